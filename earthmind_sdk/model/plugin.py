"""Built-in model components, registered through the plugin hooks (lazy targets: no torch import).

Every component class/factory carries a ``tiny_args()`` giving CPU-test-sized arguments;
tests/model/test_components.py builds each registered component with them, so a component
registered without tiny arguments fails the suite the day it lands.
"""
from earthmind_sdk.hookspecs import hookimpl


@hookimpl
def register_encoders(register):
    register("internvit", "earthmind_sdk.model.encoders.internvit:InternViT",
             description="InternViT (InternVL vision tower); loads released vision_model.* weights")
    register("timm", "earthmind_sdk.model.encoders.timm_backbone:TimmBackbone",
             description="any timm backbone by name; pretrained weights only from a local file")


@hookimpl
def register_projectors(register):
    register("mlp1", "earthmind_sdk.model.projector:MLP1",
             description="InternVL mlp1: LayerNorm, Linear, GELU, Linear")
    register("linear", "earthmind_sdk.model.projector:LinearProjector", description="one Linear layer from vision width to LLM width (e.g. after a timm backbone)")


@hookimpl
def register_language_models(register):
    register("qwen2", "earthmind_sdk.model.llm:qwen2", description="transformers Qwen2ForCausalLM (Qwen2.5)")
    register("phi3", "earthmind_sdk.model.llm:phi3", description="transformers Phi3ForCausalLM (Phi-3; InternVL2-4B-based Sa2VA)")
    register("llama", "earthmind_sdk.model.llm:llama", description="transformers LlamaForCausalLM (Llama 2 / 3 layouts)")


@hookimpl
def register_architectures(register):
    register("Qwen2ForCausalLM", "qwen2", description="Qwen2 / Qwen2.5 checkpoints (EarthMind-4B, Sa2VA-4B) -> qwen2")
    register("Phi3ForCausalLM", "phi3", description="Phi-3 checkpoints (InternVL2-4B-based Sa2VA) -> phi3")
    register("LlamaForCausalLM", "llama", description="Llama checkpoints -> llama")


@hookimpl
def register_decoders(register):
    register("sam2", "earthmind_sdk.model.decoder:SAM2Decoder",
             description="SAM2 (sam2 package) prompted by [SEG] embeddings; Hiera-L for released models")
