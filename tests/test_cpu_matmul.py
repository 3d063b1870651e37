"""The weight-major decode matmul: the same product as ``F.linear``, switched on and off cleanly."""
import torch
import torch.nn.functional as F

from gemkit.cpu_matmul import weight_major_linear, weight_major_linears
from gemkit.models import LoraSpec, ModelSpec, load_model


def test_weight_major_linear_equals_f_linear_for_any_row_count_and_bias():
    torch.manual_seed(0)
    for bias in (True, False):
        layer = torch.nn.Linear(48, 80, bias=bias)
        for shape in [(1, 48), (4, 48), (2, 3, 48), (3, 1, 48), (1, 1, 48)]:
            x = torch.randn(*shape)
            got = weight_major_linear(layer, x)
            assert got.shape == F.linear(x, layer.weight, layer.bias).shape
            assert torch.allclose(got, F.linear(x, layer.weight, layer.bias), atol=1e-5)


def test_switch_keeps_model_outputs_and_restores_every_layer():
    bundle = load_model(ModelSpec(name="random:tiny", seed=2), lora=LoraSpec(r=4))
    model = bundle.model.eval()
    ids = torch.tensor([[5, 17, 300, 42], [7, 8, 9, 10]])
    plain_layers = [m for m in model.modules() if type(m) is torch.nn.Linear]
    with torch.no_grad():
        before = model(input_ids=ids).logits
        with weight_major_linears(model):
            assert all("forward" in vars(m) for m in plain_layers)
            switched = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
    assert torch.allclose(before, switched, atol=1e-4)
    assert torch.equal(before, after)
    assert not any("forward" in vars(m) for m in plain_layers)


def test_switch_is_undone_when_the_body_raises():
    layer = torch.nn.Linear(4, 4)
    try:
        with weight_major_linears(layer):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert "forward" not in vars(layer)
