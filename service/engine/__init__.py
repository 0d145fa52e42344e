"""Rule engine: rule files -> compiled RuleSet; FHIR resources -> decisions plus a trace.

Pure Python with no web framework: the CLI, the tests and the web layer all call these.
"""

from service.engine.evaluate import Decision, Evaluation, evaluate
from service.engine.registry import RuleRegistry, install_sighup
from service.engine.ruleset import RuleSet, load_ruleset

__all__ = [
    "Decision",
    "Evaluation",
    "RuleRegistry",
    "RuleSet",
    "evaluate",
    "install_sighup",
    "load_ruleset",
]
