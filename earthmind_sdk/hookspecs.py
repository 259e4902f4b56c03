"""The plugin contract: one hook per component kind, each handed a ``register`` callback.

``register(name, target, description="")`` takes a class, a factory, or a lazy
``"package.module:attribute"`` string (preferred: listing plugins then imports nothing heavy);
``architectures`` take a plain language-model name instead. Every hook has a section with an
example in ``docs/plugins.md`` (``tests/docs/test_plugin_docs.py`` checks it).
Plugins publish a module under the ``earthmind`` entry-point group and decorate functions
with :data:`hookimpl`.
"""
import pluggy

PROJECT = "earthmind"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_sensors(register):
    """Register sensors: raster readers that produce encoder-ready images."""


@hookspec
def register_encoders(register):
    """Register vision encoders: images -> patch tokens."""


@hookspec
def register_projectors(register):
    """Register projectors: vision tokens -> language-model embedding space."""


@hookspec
def register_fusions(register):
    """Register token fusions: one token set per sensor -> the tokens the LLM sees."""


@hookspec
def register_language_models(register):
    """Register language models: embeddings -> logits, hidden states, generation."""


@hookspec
def register_decoders(register):
    """Register mask decoders: [SEG] hidden states + image -> masks."""


@hookspec
def register_tasks(register):
    """Register tasks: prompt builders and answer parsers."""


@hookspec
def register_metrics(register):
    """Register metrics: predictions + references -> scores."""


@hookspec
def register_datasets(register):
    """Register datasets: benchmark and training-data readers."""


@hookspec
def register_jobs(register):
    """Register jobs: what a recipe's ``job:`` names for ``earthmind run`` (a
    :class:`earthmind_sdk.recipes.Job`: runner, schema, smoke overrides)."""


@hookspec
def register_templates(register):
    """Register chat templates (:class:`earthmind_sdk.text.template.Template`), named by a spec's
    or checkpoint's ``template``."""


@hookspec
def register_architectures(register):
    """Register checkpoint architectures: ``config.json`` ``llm_config.architectures`` name ->
    the registered language model that builds it (a plain name; nothing is imported by it)."""
