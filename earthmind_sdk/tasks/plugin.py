"""Built-in tasks, registered through the plugin hooks (lazy targets: listing imports nothing)."""
from earthmind_sdk.hookspecs import hookimpl

_TASKS = {
    "vqa": ("vqa:VQA", "open VQA; yes/no and numbers recognised, other text normalised"),
    "yes_no": ("vqa:YesNo", "object existence, hallucination detection: True/False"),
    "counting": ("vqa:Counting", "object counting; digits or number words -> int"),
    "multiple_choice": ("choice:MultipleChoice", "options A, B, ... (EarthMind-Bench MCQ) -> letter"),
    "scene_classification": ("classification:SceneClassification", "one scene label out of task_args.labels (AID, UCM, NWPU style)"),
    "captioning": ("captioning:Captioning", "describe the whole image; scored with BLEU-4, ROUGE-L, CIDEr-D"),
    "region_captioning": ("captioning:RegionCaptioning", "describe the <vp> regions the prompt marks"),
    "referring_segmentation": ("segmentation:ReferringSegmentation", "segment what the question refers to: one mask per [SEG] token"),
    "grounded_conversation": ("segmentation:GroundedConversation", "answers with <p>phrase</p> [SEG]: a mask per phrase"),
    "visual_grounding": ("grounding:VisualGrounding", "boxes in the answer text -> Acc@0.5"),
}


@hookimpl
def register_tasks(register):
    for name, (target, description) in _TASKS.items():
        module, _, cls = target.partition(":")
        register(name, f"earthmind_sdk.tasks.{module}:{cls}", description=description)
