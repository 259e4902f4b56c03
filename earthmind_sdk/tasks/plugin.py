"""Built-in tasks, registered through the plugin hooks."""
from earthmind_sdk.hookspecs import hookimpl

_TASKS = {
    "vqa": ("closed:VQA", "open VQA; yes/no and numbers recognised"),
    "yes_no": ("closed:YesNo", "object existence, hallucination detection"),
    "counting": ("closed:Counting", "object counting; digits or number words"),
    "multiple_choice": ("closed:MultipleChoice", "options A, B, ... (EarthMind-Bench MCQ)"),
    "scene_classification": ("closed:SceneClassification", "one label from a given list"),
    "captioning": ("open_ended:Captioning", "image description"),
    "region_captioning": ("open_ended:RegionCaptioning", "description of <vp> regions"),
    "referring_segmentation": ("open_ended:ReferringSegmentation", "masks from [SEG]"),
    "grounded_conversation": ("open_ended:GroundedConversation", "<p>phrase</p> [SEG] answers"),
}


@hookimpl
def register_tasks(register):
    for name, (target, description) in _TASKS.items():
        module, _, cls = target.partition(":")
        register(name, f"earthmind_sdk.tasks.{module}:{cls}", description=description)
