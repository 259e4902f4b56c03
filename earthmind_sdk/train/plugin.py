"""Training datasets that ship with the core."""
from earthmind_sdk.hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    register("synthetic_scenes", "earthmind_sdk.train.data:SyntheticScenes",
             description="generated co-registered optical + SAR scenes with exact answers and masks")
    register("jsonl", "earthmind_sdk.train.data:JsonlRecords",
             description="custom training records, one JSON object per line")
