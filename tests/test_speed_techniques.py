"""The speed-record techniques the Fashion-MNIST recipes use (issue 21), each doing what it claims:
patch whitening, space-to-depth, identity initialisation, BatchNorm options, test-time
augmentation, alternating flips."""

from __future__ import annotations

import pytest
import torch
from functools import partial

from datamodules.augment import BatchAugment
from lightning_modules import ClassificationModule
from lightning_modules.nets import AirbenchNet, VGGNet
from lightning_modules.nets.whitening import PatchWhitening, patches
from lightning_modules.tta import TestTimeAugmentation, shift


def images(n=64, c=1, size=14, seed=0):
    """Correlated images (smoothed noise), so that whitening has something to undo."""
    x = torch.rand(n, c, size + 2, size + 2, generator=torch.Generator().manual_seed(seed))
    return (x[..., 1:-1, 1:-1] + x[..., 2:, 2:] + x[..., :-2, 1:-1]) * 3 + 1


# ---- patch whitening ----------------------------------------------------------------------------

def test_whitening_output_covariance_is_the_identity_on_the_training_patches():
    layer = PatchWhitening(in_channels=4, kernel_size=2, eps=1e-8).train()
    x = images(c=4)
    before = torch.cov(patches(x, 2).T)
    assert (before - torch.diag(torch.diag(before))).abs().max() > 0.1, "the patches are correlated"
    out = layer(x)  # the first training batch fits the filters
    assert out.shape == (64, 32, 13, 13) and layer.out_channels == 32
    whitened = out[:, :16].permute(0, 2, 3, 1).reshape(-1, 16).double()
    covariance = torch.cov(whitened.T)
    assert torch.allclose(covariance, torch.eye(16, dtype=torch.float64), atol=1e-3)
    assert torch.equal(out[:, 16:], -out[:, :16]), "the second half are the negatives"


def test_whitening_fits_once_in_training_and_is_kept_in_the_state_dict():
    layer = PatchWhitening(in_channels=1, kernel_size=2)
    layer.eval()(images())
    assert not layer.fitted and not layer.weight.any(), "evaluation never fits"
    layer.train()(images(seed=1))
    fitted = layer.weight.clone()
    layer(images(seed=2))
    assert torch.equal(layer.weight, fitted), "fitted once, on the first training batch"
    assert not layer.weight.requires_grad and layer.bias.requires_grad  # only the bias learns

    loaded = PatchWhitening(in_channels=1, kernel_size=2)
    loaded.load_state_dict(layer.state_dict())
    loaded.train()(images(seed=3))
    assert loaded.fitted and torch.equal(loaded.weight, fitted), "a loaded (or resumed) layer never refits"


def test_whitening_without_bias_has_nothing_to_train_and_ends_the_backward_pass_before_it():
    torch.manual_seed(0)
    with_bias = AirbenchNet(widths=[8], depth=1, channels_last=True)
    net = AirbenchNet(widths=[8], depth=1, channels_last=True, whitening_bias=False)
    net.load_state_dict({k: v for k, v in with_bias.state_dict().items() if k != "stem.0.bias"})
    x = images(c=1, size=28).contiguous(memory_format=torch.channels_last)
    whitening = net.stem[0]
    assert whitening.bias is None and not any(p.requires_grad for p in net.stem.parameters())
    assert "stem.0.bias" not in net.state_dict() and "stem.0.bias" in with_bias.state_dict()
    assert torch.equal(net.train()(x), with_bias.train()(x)), "a zero bias, the same outputs"
    assert torch.equal(whitening.weight, with_bias.stem[0].weight), "fitted the same"
    assert not net.stem(x).requires_grad, "no gradient flows into the first conv's input"
    net(x).square().mean().backward()
    assert net.groups[0][0].weight.grad is not None, "the first conv still learns"


# ---- AirbenchNet: space-to-depth, the whitening stem, conv groups -------------------------------

def test_airbench_net_space_to_depth_and_whitening_stem():
    net = AirbenchNet(widths=[8, 16], depth=1, space_to_depth=2, whitening_kernel=2, channels_last=True)
    x = torch.randn(4, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    assert net(x).shape == (4, 10)
    whitening = net.stem[1]
    assert isinstance(whitening, PatchWhitening) and whitening.fitted
    assert whitening.weight.shape == (32, 4, 2, 2), "2x2 patches of the 14x14x4 space-to-depth image"
    assert net.groups[0][0].in_channels == 32
    unshuffled = net.stem[0](x)
    assert unshuffled.shape == (4, 4, 14, 14)
    assert torch.equal(torch.nn.functional.pixel_shuffle(unshuffled, 2), x), "space-to-depth loses nothing"
    assert AirbenchNet(widths=[8], whitening_kernel=0).groups[0][0].in_channels == 1
    with pytest.raises(ValueError, match="space_to_depth"):
        AirbenchNet(space_to_depth=3)


def test_airbench_conv_group_pools_after_its_first_conv():
    net = AirbenchNet(widths=[8, 16], depth=2, whitening_kernel=2)
    kinds = [type(m).__name__ for m in net.groups[0]]
    assert kinds == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU"]
    sizes = []
    for group in net.groups:
        group.register_forward_hook(lambda module, args, out: sizes.append(tuple(out.shape[1:])))
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sizes == [(8, 13, 13), (16, 6, 6)], "27x27 after the 2x2 whitening, halved by each group"


def test_identity_init_starts_each_conv_as_the_identity_on_its_first_channels():
    torch.manual_seed(0)
    net = AirbenchNet(widths=[8, 16], depth=2, identity_init=True)
    convs = [m for m in net.groups.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(8, 8), (8, 8), (8, 16), (16, 16)]
    for conv in convs:
        x = torch.randn(2, conv.in_channels, 9, 9)
        n = min(conv.in_channels, conv.out_channels)
        out = conv(x)
        assert torch.allclose(out[:, :n], x[:, :n]), "out channel i copies in channel i"
        if conv.out_channels > n:
            assert out[:, n:].abs().sum() > 0, "the other filters keep their random initialisation"
    plain = AirbenchNet(widths=[8, 16], depth=2)
    assert not torch.allclose(plain.groups[0][4](torch.ones(1, 8, 5, 5))[:, :, 2, 2], torch.ones(1, 8))


def test_bn_scale_false_trains_only_the_shift_and_bn_momentum_sets_the_running_statistics():
    torch.manual_seed(0)
    net = AirbenchNet(widths=[8], depth=1, whitening_kernel=0, bn_scale=False, bn_momentum=0.6)
    norm = net.groups[0][2]
    assert isinstance(norm, torch.nn.BatchNorm2d) and not norm.weight.requires_grad and norm.bias.requires_grad
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        pooled = net.groups[0][1](net.groups[0][0](x))  # what the BatchNorm normalises
    net(x).square().mean().backward()
    optimizer.step()
    assert torch.equal(norm.weight, torch.ones(8)), "the scale stays 1"
    assert not torch.equal(norm.bias, torch.zeros(8)), "the shift learns"
    assert torch.allclose(norm.running_mean, 0.6 * pooled.mean(dim=(0, 2, 3)), atol=1e-6), "momentum 0.6 of the batch"
    assert AirbenchNet(widths=[8]).groups[0][2].momentum == 0.1
    with pytest.raises(ValueError, match="bn_momentum"):
        AirbenchNet(bn_momentum=0.0)


# ---- test-time augmentation ---------------------------------------------------------------------

def test_shift_moves_the_image_and_reflects_into_the_border():
    x = torch.arange(2 * 25.0).reshape(2, 1, 5, 5)
    moved = shift(x, 1, 1)
    assert torch.equal(moved[..., 1:, 1:], x[..., :-1, :-1])
    assert torch.equal(moved[..., 0, 1:], x[..., 1, :-1]), "the uncovered row is the reflection"
    assert torch.equal(shift(x, -2, -2)[..., :-2, :-2], x[..., 2:, 2:])


@pytest.mark.parametrize("flip,translate,passes", [(True, 0, 2), (False, 1, 3), (True, 1, 6)])
def test_tta_prediction_is_the_mean_of_the_transformed_passes(flip, translate, passes):
    torch.manual_seed(0)
    net = VGGNet(channels=[4, 8], convs=[1, 1]).eval()
    calls = []
    net.register_forward_hook(lambda module, args, out: calls.append(args[0]))
    x = torch.randn(3, 1, 28, 28)
    tta = TestTimeAugmentation(flip=flip, translate=translate)
    with torch.no_grad():
        got = tta(net, x)
        views = [x] + ([shift(x, translate, translate), shift(x, -translate, -translate)] if translate else [])
        views += [v.flip(-1) for v in views] if flip else []
        expected = torch.stack([net(v) for v in views]).mean(0)
    assert len(calls) == 2 * passes and len(views) == passes
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, net(x), atol=1e-4), "the views change the prediction"


def test_classification_uses_tta_in_test_and_predict_only():
    torch.manual_seed(0)
    net = VGGNet(channels=[4, 8], convs=[1, 1]).eval()
    task = ClassificationModule(net, partial(torch.optim.SGD, lr=0.1), tta=TestTimeAugmentation(flip=True))
    task.log = lambda *args, **kwargs: None  # no trainer: the step's logging is not under test
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    seen = []
    net.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        task.step((x, y), "val")
        assert len(seen) == 1, "validation is one pass"
        loss, _ = task.step((x, y), "test")
        assert len(seen) == 3
        mean_logits = (seen[1] + seen[2]) / 2
        assert torch.allclose(loss, torch.nn.functional.cross_entropy(mean_logits, y))
        assert torch.allclose(task.predict(x), mean_logits.softmax(-1), atol=1e-6)


# ---- alternating flip ---------------------------------------------------------------------------

def test_alternate_flip_shows_every_image_both_ways_in_two_epochs():
    augment = BatchAugment(alternate_flip=True)
    x = (torch.rand(200, 1, 6, 6, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    stored = augment.prepare(x, torch.Generator().manual_seed(1))
    mirrored = torch.tensor([torch.equal(s, i.flip(-1)) for s, i in zip(stored, x)])
    assert torch.all(mirrored | torch.tensor([torch.equal(s, i) for s, i in zip(stored, x)]))
    assert 60 < int(mirrored.sum()) < 140, "a random half is mirrored once, when stored"
    even, odd = augment(stored.float(), epoch=2), augment(stored.float(), epoch=3)
    assert torch.equal(even, stored.float()) and torch.equal(odd, stored.float().flip(-1))
    for i in range(len(x)):  # over two epochs in a row, each image once as it is and once mirrored
        assert {tuple(even[i].flatten().tolist()), tuple(odd[i].flatten().tolist())} == \
            {tuple(x[i].float().flatten().tolist()), tuple(x[i].float().flip(-1).flatten().tolist())}
    assert torch.equal(BatchAugment(hflip_p=0.5).prepare(x), x), "random flips store the images as they are"
    with pytest.raises(ValueError, match="alternate_flip"):
        BatchAugment(hflip_p=0.5, alternate_flip=True)


def test_whitening_fits_in_float32_under_mixed_precision():
    layer = PatchWhitening(in_channels=4, kernel_size=2, eps=1e-8).train()
    x = images(c=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x)
    reference = PatchWhitening(in_channels=4, kernel_size=2, eps=1e-8).train()
    reference(x)
    assert torch.allclose(layer.weight, reference.weight, atol=1e-4)
