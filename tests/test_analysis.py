"""MACs counted from the layers against hand-computed and published figures."""

import pytest

import kerasdl
from kerasdl.analysis import count_macs, summarize


def test_lenet5_macs_from_the_papers_connection_counts():
    """LeCun et al. 1998 (Sec. II-B) give connections including bias terms: C1 122,304,
    C3 151,600, C5 48,120, F6 10,164; without the biases (one per output) those are
    117,600, 150,000, 48,000 and 10,080 multiply-adds. S2 and S4 multiply each window
    sum once (1,176 and 400), and the 84x10 output layer adds 840."""
    model = kerasdl.create_model("lenet5")
    per_layer = {name: macs for name, _, macs in summarize(model)["layers"] if macs}
    assert per_layer == {"c1": 122_304 - 28 * 28 * 6, "s2": 14 * 14 * 6,
                         "c3": 151_600 - 10 * 10 * 16, "s4": 5 * 5 * 16,
                         "c5": 48_120 - 120, "f6": 10_164 - 84, "output": 840}
    assert count_macs(model) == 328_096


def test_vgg16_matches_its_published_15_5_gmacs():
    macs = count_macs(kerasdl.create_model("vgg16"))
    assert macs == pytest.approx(15.5e9, rel=0.01)


def test_resnet50_macs_near_the_papers_3_8_gflops():
    """He et al. 2015, Table 1: 3.8 x 10^9 FLOPs (multiply-adds) for ResNet-50."""
    macs = count_macs(kerasdl.create_model("resnet50", input_shape=(224, 224, 3)))
    assert macs == pytest.approx(3.8e9, rel=0.05)
