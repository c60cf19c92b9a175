"""Facts about seedzoo's architectures that listings and cards show without building a network.

`BACKBONE_PARAMS`: parameters of each backbone (`num_classes=0`); tests/test_models.py counts them on the
built networks, so a change to an architecture fails there until this table follows.
"""
from __future__ import annotations

BACKBONE_PARAMS: dict[str, int] = {
    "seed_efficientnet_b0": 4_007_548,
    "seed_efficientnet_b0_lowres": 4_007_548,
    "seed_efficientnet_b1": 6_513_184,
    "seed_efficientnet_b1_lowres": 6_513_184,
    "seed_mobilenetv3_large": 4_202_032,
    "seed_mobilenetv3_large_lowres": 4_202_032,
    "seed_resnet101": 42_500_160,
    "seed_resnet152": 58_143_808,
    "seed_resnet18": 11_176_512,
    "seed_resnet18_lowres": 11_168_832,
    "seed_resnet34": 21_284_672,
    "seed_resnet34_lowres": 21_276_992,
    "seed_resnet50": 23_508_032,
    "seed_resnet50_lowres": 23_500_352,
    "seed_resnet50w2": 93_907_072,
    "seed_resnet50w4": 375_378_176,
    "seed_resnet50w5": 586_450_240,
}
