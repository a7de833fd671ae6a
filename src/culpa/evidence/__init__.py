"""Evidence: case files, Admiralty grading, ACH ratings, log-odds combination, break-even.

    case = load_case("examples/k1_airbase.yaml")
    result = analyse(case, hypothesis_priors(case, model_proba, resolve=aliases.resolve))
    result.to_dict()
"""

from culpa.evidence.analysis import CaseResult, analyse
from culpa.evidence.case import (Case, EvidenceItem, Hypothesis, Incident, hypothesis_priors,
                                 load_case, parse_case)
from culpa.evidence.combine import Combination, ItemResult, combine, posterior
from culpa.evidence.sensitivity import break_even

__all__ = ["Case", "CaseResult", "Combination", "EvidenceItem", "Hypothesis", "Incident",
           "ItemResult", "analyse", "break_even", "combine", "hypothesis_priors", "load_case",
           "parse_case", "posterior"]
