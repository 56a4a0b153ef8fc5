"""The whole-batch augmentations of datamodules/augment.py."""

import pytest
import torch
import torch.nn.functional as F

from datamodules.augment import BatchAugment, random_crop, random_erasing, random_hflip


def images(n=16, c=1, h=28, w=28, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) + 1.0  # > 0: zeros mark padding


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---- random_crop -------------------------------------------------------------------------------

def test_crop_keeps_shape_dtype_and_zero_padding_is_identity():
    x = images()
    out = random_crop(x, 2, gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(random_crop(x, 0, gen()), x)


def test_crop_is_a_shift_of_the_padded_image():
    x, p = images(n=32, c=3), 3
    out = random_crop(x, p, gen(1))
    padded = F.pad(x, (p, p, p, p))
    shifts = []
    for i in range(len(x)):
        match = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                 if torch.equal(out[i], padded[i, :, dy:dy + 28, dx:dx + 28])]
        assert match, f"image {i} is not a crop of its padded input"
        shifts.append(match[0])
    assert len(set(shifts)) > 1, "every image got the same offset"
    assert any(s != (p, p) for s in shifts), "crop never moved the image"
    assert (out == 0).any(), "no padding came into view"
    assert out.max() <= x.max() and out.min() >= 0  # values come from the input or the zero padding


def test_crop_pads_with_its_fill_value_one_for_all_or_one_per_channel():
    x = images(n=64, c=3)  # values in [1, 2): anything below came from the padding
    zero = random_crop(x, 2, gen(2))
    one = random_crop(x, 2, gen(2), fill=-0.5)
    assert torch.equal(one >= 1, zero >= 1), "the fill changes the padding, not the offsets"
    assert torch.equal(one[one < 1], torch.full_like(one[one < 1], -0.5)) and (one < 1).any()
    fills = [-1.0, -2.0, -3.0]
    each = random_crop(x, 2, gen(2), fill=fills)
    assert torch.equal(each >= 1, zero >= 1)
    for channel, value in enumerate(fills):
        padding = each[:, channel][each[:, channel] < 1]
        assert len(padding) and (padding == value).all(), f"channel {channel} is not padded with {value}"
    in_view = zero[zero >= 1]
    assert len(in_view) and torch.equal(each[each >= 1], in_view), "the image itself is unchanged"


def test_crop_same_generator_seed_same_result_other_seed_differs():
    x = images()
    assert torch.equal(random_crop(x, 2, gen(5)), random_crop(x, 2, gen(5)))
    assert not torch.equal(random_crop(x, 2, gen(5)), random_crop(x, 2, gen(6)))


# ---- random_hflip ------------------------------------------------------------------------------

def test_hflip_p1_flips_all_p0_flips_none():
    x = images()
    assert torch.equal(random_hflip(x, 1.0, gen()), x.flip(-1))
    assert torch.equal(random_hflip(x, 0.0, gen()), x)


def test_hflip_flips_some_images_whole_and_leaves_the_rest():
    x = images(n=64)
    out = random_hflip(x, 0.5, gen(3))
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))]
    kept = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54
    assert torch.equal(out, random_hflip(x, 0.5, gen(3)))


# ---- random_erasing ----------------------------------------------------------------------------

def test_erasing_fills_one_rectangle_with_value_and_keeps_the_rest():
    x = images(n=64)
    out = random_erasing(x, p=1.0, scale=(0.05, 0.2), value=0.0, generator=gen(2))
    assert out.shape == x.shape
    changed = out != x
    assert torch.all(out[changed] == 0.0)
    for i in range(len(x)):
        rows = changed[i, 0].any(dim=1).nonzero().flatten()
        cols = changed[i, 0].any(dim=0).nonzero().flatten()
        assert len(rows) and len(cols), f"image {i} was not erased with p=1"
        box = changed[i, 0, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all(), "the erased pixels are not one rectangle"
        area = box.numel() / (28 * 28)
        assert 0.02 <= area <= 0.3


def test_erasing_probability_and_determinism():
    x = images(n=200)
    assert torch.equal(random_erasing(x, p=0.0, generator=gen()), x)
    out = random_erasing(x, p=0.5, generator=gen(4))
    erased = (out != x).flatten(1).any(1).float().mean().item()
    assert 0.3 < erased < 0.7
    assert torch.equal(out, random_erasing(x, p=0.5, generator=gen(4)))


# ---- BatchAugment ------------------------------------------------------------------------------

def test_batch_augment_pipeline():
    x = images(n=32)
    aug = BatchAugment(crop_padding=2, hflip_p=0.5, erasing_p=0.25)
    out = aug(x, gen(7))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert not torch.equal(out, x)
    assert torch.equal(out, aug(x, gen(7)))
    assert torch.equal(BatchAugment()(x, gen()), x)  # all off: unchanged
    assert "crop_padding=2" in repr(aug)


def test_batch_augment_uses_the_global_rng_without_a_generator():
    x = images()
    aug = BatchAugment(crop_padding=2, hflip_p=0.5)
    torch.manual_seed(11)
    a = aug(x)
    torch.manual_seed(11)
    assert torch.equal(a, aug(x))


def test_batch_augment_does_not_change_its_input():
    x = images()
    before = x.clone()
    BatchAugment(crop_padding=2, hflip_p=1.0, erasing_p=1.0)(x, gen())
    assert torch.equal(x, before)


@pytest.mark.parametrize("kwargs", [dict(hflip_p=1.5), dict(erasing_p=-0.1), dict(crop_padding=-1)])
def test_batch_augment_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        BatchAugment(**kwargs)


def test_channels_last_batches_augment_to_the_same_values():
    x = images(n=8, c=3)
    aug = BatchAugment(crop_padding=2, hflip_p=0.5, erasing_p=0.5)
    a = aug(x, gen(9))
    b = aug(x.contiguous(memory_format=torch.channels_last), gen(9))
    assert torch.equal(a, b)
