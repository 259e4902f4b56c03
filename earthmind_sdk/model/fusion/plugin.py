"""Built-in fusions, registered through the plugin hooks (lazy targets: no torch import)."""
from earthmind_sdk.hookspecs import hookimpl


@hookimpl
def register_fusions(register):
    register("concat", "earthmind_sdk.model.fusion.modules:ConcatFusion",
             description="EarthMind v1 inference: [primary; secondary] tokens, weights 1")
    register("mma", "earthmind_sdk.model.fusion.modules:MMAFusion",
             description="EarthMind v1 training: learned query, sigmoid weight per token pair, reweight + concat")
    register("hca", "earthmind_sdk.model.fusion.modules:HCAFusion",
             description="EarthMind v2: parameter-free quality (self-similarity entropy) + text relevance, weighted sum")
