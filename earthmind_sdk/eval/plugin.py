"""Built-in metrics (the scorers of :mod:`.scorers`, which tasks name in ``metrics``) and benchmark
datasets, registered through the plugin hooks."""
from earthmind_sdk.hookspecs import hookimpl


@hookimpl
def register_metrics(register):
    m = "earthmind_sdk.eval.scorers"
    register("accuracy", f"{m}:Accuracy", description="exact match of parsed answers (and unparsed, exact_match)")
    register("m_avg", f"{m}:MAvg", description="mean of per-task accuracies (EarthMind-Bench)")
    register("mask_iou", f"{m}:MaskIoUScore", description="gIoU and cIoU of predicted masks")
    register("acc_at_iou", f"{m}:AccAtIoU", description="box grounding Acc@0.5")
    register("bleu4", f"{m}:Bleu4", description="corpus BLEU-4 for open-ended answers")
    register("rouge_l", f"{m}:RougeL", description="ROUGE-L F for open-ended answers")
    register("cider", f"{m}:Cider", description="corpus CIDEr-D for open-ended answers")
    register("text_scores", f"{m}:TextScores", description="BLEU-4, ROUGE-L and CIDEr-D together")


@hookimpl
def register_datasets(register):
    register("earthmind_bench", "earthmind_sdk.eval.bench:EarthMindBench",
             description="EarthMind-Bench paired SAR + optical questions (JSON + img/test/{rgb,sar})")
    register("vqa_file", "earthmind_sdk.eval.datasets:VQAFile",
             description="VQA question files (VRSBench, GeoChat-Bench / RSVQA-HR), answers inline or separate")
    register("classification_folder", "earthmind_sdk.eval.datasets:ClassificationFolder",
             description="scene classification folders <root>/<class>/<image> (AID, UCM, NWPU)")
