"""Downstream evaluation: features, kNN, linear probe, fine-tuning, semi-supervised, transfer,
detection backbones and export. Every protocol returns an `EvalResult` holding its settings."""
from .features import HeadOutput, effective_rank, extract_features, representation, state_dict_sha256
from .finetune import FinetuneConfig, finetune
from .knn import knn_classify, knn_evaluate, knn_scores
from .linear import LinearProbeConfig, linear_probe, linear_probe_features
from .pixels import RawPixels
from .results import EvalResult
from .runner import PROTOCOLS, parse_protocol, run_evaluation
from .semi import class_balanced_subset, semi_supervised, subset_from_file
from .verify import VerifyResult, verify_measured

__all__ = [
    "EvalResult", "FinetuneConfig", "HeadOutput", "LinearProbeConfig", "PROTOCOLS", "RawPixels", "VerifyResult",
    "class_balanced_subset", "effective_rank", "extract_features", "finetune", "knn_classify", "knn_evaluate",
    "knn_scores", "linear_probe",
    "linear_probe_features", "parse_protocol", "representation", "run_evaluation", "semi_supervised",
    "state_dict_sha256", "subset_from_file", "verify_measured",
]
