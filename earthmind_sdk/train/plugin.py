"""Training datasets that ship with the core."""
from earthmind_sdk.hookspecs import hookimpl

_F = "earthmind_sdk.train.formats"


@hookimpl
def register_datasets(register):
    register("synthetic_scenes", "earthmind_sdk.train.data:SyntheticScenes",
             description="generated co-registered optical + SAR scenes with exact answers and masks")
    register("jsonl", "earthmind_sdk.train.data:JsonlRecords",
             description="custom training records, one JSON object per line")
    register("llava", f"{_F}.llava:LlavaConversations",
             description="LLaVA-style conversation JSON (multi-turn, <image> placement)")
    register("rrsisd", f"{_F}.refseg:RRSISD",
             description="RRSIS-D referring segmentation as it ships (instances JSON + refs pickle)")
    register("refsegrs", f"{_F}.refseg:RefSegRS",
             description="RefSegRS referring segmentation as it ships (images, masks, phrase files)")
    register("osprey", f"{_F}.osprey:OspreyRegions",
             description="Osprey-style region captions (masks as <vp> region prompts)")
    register("paired_conversations", f"{_F}.paired:PairedConversations",
             description="paired SAR + optical folders (img/<split>/{sar,rgb}/img) with conversations")
    register("mixture", f"{_F}.mixture:Mixture",
             description="several datasets with per-dataset repeats (parts: [{dataset, args, repeat}])")
