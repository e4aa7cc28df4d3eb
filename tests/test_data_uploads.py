"""Uploads: image decoding, .npz files and class-folder zips, with every validation error path."""

from __future__ import annotations

import io
import stat
import struct
import time
import zipfile
import zlib
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from batchcam.data import (
    UploadLimits,
    decode_image,
    load_image_folder_zip,
    load_npz,
    load_upload,
    stratified_split_indices,
)
from batchcam.data.images import with_common_channels
from batchcam.errors import ConfigError, DataValidationError
from batchcam.pixels.npz_images import MAX_MEMBERS, read_npz_images

LIMITS = UploadLimits()
RNG = np.random.default_rng(0)


# ---- builders ---------------------------------------------------------------------------------------


def png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def gray(height: int = 8, width: int = 8) -> np.ndarray:
    return RNG.integers(0, 256, (height, width), dtype=np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose valid IHDR claims ``width × height`` 8-bit gray pixels, with (almost) no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def zipped(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for member_name, content in members.items():
            if member_name.endswith("/"):
                archive.writestr(zipfile.ZipInfo(member_name), b"")
            else:
                archive.writestr(member_name, content)
    return buffer.getvalue()


def class_folders(classes: dict[str, int], *, root: str = "", size: int = 8) -> dict[str, bytes]:
    return {
        f"{root}{class_name}/{index:03d}.png": png(gray(size, size))
        for class_name, count in classes.items()
        for index in range(count)
    }


def labelled(n_per_class: tuple[int, ...], *, height: int = 6, width: int = 5) -> dict[str, np.ndarray]:
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class)
    return {"images": RNG.integers(0, 256, (len(labels), height, width), dtype=np.uint8), "labels": labels}


def refused(code: str, load, *args, **kwargs) -> str:
    """Assert that loading fails with ``code``; return the message for further checks."""
    with pytest.raises(DataValidationError) as caught:
        load(*args, **kwargs)
    assert caught.value.code == code, caught.value.message
    assert len(caught.value.message) > 30, "the message says what was wrong and what is accepted"
    return caught.value.message


# ---- single images ----------------------------------------------------------------------------------


def test_grayscale_png_decodes_to_one_channel() -> None:
    pixels = gray(5, 7)
    image = decode_image(png(pixels), LIMITS)
    assert image.dtype == torch.uint8 and image.shape == (1, 5, 7)
    assert np.array_equal(image[0].numpy(), pixels)


def test_rgb_and_rgba_decode_to_three_channels_without_alpha() -> None:
    rgba = RNG.integers(0, 256, (4, 6, 4), dtype=np.uint8)
    image = decode_image(png(rgba), LIMITS)
    assert image.shape == (3, 4, 6)
    assert np.array_equal(image.permute(1, 2, 0).numpy(), rgba[:, :, :3])
    assert decode_image(jpeg(rgba[:, :, :3]), LIMITS).shape == (3, 4, 6)


def test_gray_with_alpha_gray_palette_and_gray_jpeg_stay_one_channel() -> None:
    gray_alpha = np.stack([gray(), gray()], axis=-1)
    assert decode_image(png(gray_alpha), LIMITS).shape == (1, 8, 8)
    palette_image = Image.fromarray(gray()).convert("P")
    assert palette_image.mode == "P"
    buffer = io.BytesIO()
    palette_image.save(buffer, format="PNG")
    assert decode_image(buffer.getvalue(), LIMITS).shape == (1, 8, 8)
    assert decode_image(jpeg(gray()), LIMITS).shape == (1, 8, 8)


def test_colour_palette_decodes_to_rgb() -> None:
    colours = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(colours).convert("P", palette=Image.Palette.ADAPTIVE).save(buffer, format="PNG")
    assert decode_image(buffer.getvalue(), LIMITS).shape == (3, 8, 8)


def test_sixteen_bit_png_keeps_its_top_eight_bits() -> None:
    deep = np.array([[0, 256, 65535, 32768]], dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(deep).save(buffer, format="PNG")
    assert decode_image(buffer.getvalue(), LIMITS)[0].tolist() == [[0, 1, 255, 128]]


def test_mixed_sets_become_rgb_and_pure_gray_sets_stay_gray() -> None:
    one, three = torch.zeros(1, 2, 2, dtype=torch.uint8), torch.ones(3, 2, 2, dtype=torch.uint8)
    assert [image.shape[0] for image in with_common_channels([one, one])] == [1, 1]
    assert [image.shape[0] for image in with_common_channels([one, three])] == [3, 3]


def test_huge_header_is_refused_before_any_pixel_is_decoded() -> None:
    start = time.perf_counter()
    message = refused(
        "image_too_large", decode_image, png_with_header(50_000, 50_000), LIMITS, name="huge.png"
    )
    assert time.perf_counter() - start < 0.5
    assert "huge.png" in message
    # below Pillow's own bomb limit, our header check still refuses before decoding the broken IDAT
    message = refused("image_too_large", decode_image, png_with_header(2000, 2000), LIMITS, name="big.png")
    assert "2000×2000" in message and f"{LIMITS.max_image_pixels:,}" in message


def test_corrupt_and_truncated_images_are_refused() -> None:
    assert "png" in refused("corrupt_image", decode_image, png_with_header(4, 4), LIMITS, name="bad.png")
    truncated = png(gray(64, 64))[:200]
    refused("corrupt_image", decode_image, truncated, LIMITS)
    refused("corrupt_image", decode_image, b"\x89PNG\r\n\x1a\n" + b"garbage" * 5, LIMITS)


def test_other_formats_are_refused_whatever_their_name() -> None:
    buffer = io.BytesIO()
    Image.fromarray(gray()).save(buffer, format="GIF")
    message = refused("unsupported_image_format", decode_image, buffer.getvalue(), LIMITS, name="cat.png")
    assert "cat.png" in message and "PNG" in message and "JPEG" in message
    refused("unsupported_image_format", decode_image, b"hello, world", LIMITS)


# ---- .npz -------------------------------------------------------------------------------------------


def test_npz_without_test_set_is_split_80_20_per_class() -> None:
    arrays = labelled((50, 30, 20))
    splits = load_npz(npz(**arrays), LIMITS, name="digits", seed=1)
    assert splits.name == "digits" and splits.class_names == ("0", "1", "2")
    assert splits.train.class_counts().tolist() == [40, 24, 16]
    assert splits.test.class_counts().tolist() == [10, 6, 4]
    assert splits.train.images.shape[1:] == (1, 6, 5)
    again = load_npz(npz(**arrays), LIMITS, name="digits", seed=1)
    assert again.fingerprint == splits.fingerprint
    assert load_npz(npz(**arrays), LIMITS, name="digits", seed=2).fingerprint != splits.fingerprint
    # the rows are the uploaded rows: nothing lost, nothing duplicated
    all_rows = torch.cat([splits.train.images, splits.test.images]).flatten(1)
    assert sorted(map(bytes, all_rows.numpy())) == sorted(map(bytes, arrays["images"].reshape(100, -1)))


def test_npz_masks_follow_their_images_into_both_splits() -> None:
    arrays = labelled((10, 10))
    # Each image's mask encodes its own row number, so a mask paired with the wrong image shows.
    masks = np.zeros((20, 6, 5), np.uint8)
    for row in range(20):
        masks[row].flat[: row + 1] = 7  # nonzero = inside
    arrays["images"][:, 0, 0] = np.arange(20)  # the row number, readable back from the image
    splits = load_npz(npz(**arrays, masks=masks), LIMITS, name="masked", seed=3)
    for split in (splits.train, splits.test):
        assert split.object_masks is not None and split.object_masks.dtype == torch.bool
        rows = split.images[:, 0, 0, 0].long()
        assert split.object_masks.flatten(1).sum(dim=1).tolist() == (rows + 1).tolist()
    given = {
        **arrays,
        "test_images": arrays["images"][:2],
        "test_labels": np.array([0, 1]),
        "test_masks": masks[:2] > 0,
    }
    with_test = load_npz(npz(**given), LIMITS, name="masked", seed=3)
    assert with_test.train.object_masks is None  # no "masks": only the test split has them
    assert with_test.test.object_masks is not None
    assert with_test.test.object_masks.flatten(1).sum(dim=1).tolist() == [1, 2]


def test_split_keeps_every_class_in_train() -> None:
    labels = torch.tensor([0, 1, 1, 2, 2, 2])
    train, test = stratified_split_indices(labels, 3, seed=0)
    assert torch.bincount(labels[train], minlength=3).tolist() == [1, 1, 2]
    assert torch.bincount(labels[test], minlength=3).tolist() == [0, 1, 1]


def test_npz_with_names_channels_and_test_set_is_used_as_given() -> None:
    images = RNG.integers(0, 256, (6, 4, 5, 3), dtype=np.uint8)
    splits = load_npz(
        npz(
            images=images,
            labels=np.array([0, 1, 0, 1, 0, 1], dtype=np.uint8),
            class_names=np.array(["cat", "dog"]),
            test_images=images[:2],
            test_labels=np.array([1, 1]),
        ),
        LIMITS,
        name="pets",
    )
    assert splits.class_names == ("cat", "dog")
    assert (len(splits.train), len(splits.test)) == (6, 2)
    assert torch.equal(splits.train.images, torch.from_numpy(images).permute(0, 3, 1, 2))
    single = load_npz(npz(images=images[:, :, :, :1], labels=np.arange(6) % 2), LIMITS, name="one")
    assert single.train.images.shape[1:] == (1, 4, 5)


@pytest.mark.parametrize(
    ("arrays", "code", "fragment"),
    [
        ({"images": np.zeros((4, 2, 2), np.uint8)}, "npz_missing_key", "'labels'"),
        (
            {**labelled((2, 2)), "test_images": np.zeros((1, 6, 5), np.uint8)},
            "npz_missing_key",
            "test_labels",
        ),
        ({**labelled((2, 2)), "images": np.zeros((4, 6, 5), np.float32)}, "npz_wrong_dtype", "uint8"),
        ({**labelled((2, 2)), "labels": np.array([0.0, 0, 1, 1])}, "npz_wrong_dtype", "integers"),
        ({**labelled((2, 2)), "images": np.zeros((4, 30), np.uint8)}, "npz_wrong_shape", "N×H×W"),
        ({**labelled((2, 2)), "images": np.zeros((4, 6, 5, 4), np.uint8)}, "npz_wrong_shape", "C = 1 or 3"),
        ({**labelled((2, 2)), "labels": np.zeros((4, 1), int)}, "npz_wrong_shape", "1-D"),
        ({**labelled((2, 2)), "labels": np.array([0, 1, 1])}, "length_mismatch", "3 labels for 4 images"),
        ({**labelled((2, 2)), "labels": np.array([0, -1, 1, 1])}, "label_out_of_range", "-1"),
        (
            {**labelled((2, 2)), "labels": np.array([0, 2, 1, 1]), "class_names": np.array(["a", "b"])},
            "label_out_of_range",
            "[0, 2)",
        ),
        ({**labelled((2, 2)), "labels": np.array([0, 0, 2, 2])}, "empty_class", "1 ('1')"),
        ({**labelled((2, 2)), "class_names": np.array(["a", "b", "c"])}, "empty_class", "'c'"),
        ({**labelled((4,))}, "too_few_classes", "at least 2"),
        ({**labelled((2, 2)), "labels": np.array([0, 10**9, 1, 1])}, "too_many_classes", "1,000,000,001"),
        ({**labelled((2, 2)), "class_names": np.array(["a", "a"])}, "invalid_class_names", "unique"),
        ({**labelled((2, 2)), "class_names": np.array(["a", " "])}, "invalid_class_names", "non-blank"),
        ({**labelled((2, 2)), "class_names": np.array([1, 2])}, "npz_wrong_dtype", "strings"),
        ({**labelled((2, 2)), "class_names": np.array([["a", "b"]])}, "npz_wrong_shape", "1-D"),
        ({"images": np.zeros((0, 6, 5), np.uint8), "labels": np.zeros(0, int)}, "empty_dataset", "no images"),
        (
            {
                "images": np.zeros((0, 6, 5), np.uint8),
                "labels": np.zeros(0, int),
                "test_images": np.zeros((2, 6, 5), np.uint8),
                "test_labels": np.array([0, 1]),
            },
            "empty_dataset",
            "no images in 'images'",
        ),
        (
            {
                **labelled((2, 2)),
                "test_images": np.zeros((0, 6, 5), np.uint8),
                "test_labels": np.zeros(0, int),
            },
            "empty_dataset",
            "no images in 'test_images'",
        ),
        ({**labelled((1, 1))}, "too_few_images", "two or more"),
        (
            {**labelled((2, 2)), "test_images": np.zeros((1, 5, 5), np.uint8), "test_labels": np.array([0])},
            "shape_mismatch",
            "(5, 5)",
        ),
        (
            {**labelled((2, 2)), "test_images": np.zeros((1, 6, 5), np.uint8), "test_labels": np.array([7])},
            "label_out_of_range",
            "test_labels",
        ),
        ({**labelled((2, 2)), "masks": np.zeros((4, 5, 6), bool)}, "shape_mismatch", "one mask per image"),
        ({**labelled((2, 2)), "masks": np.zeros((3, 6, 5), bool)}, "shape_mismatch", "(3, 6, 5)"),
        ({**labelled((2, 2)), "masks": np.zeros((4, 6, 5), np.float32)}, "npz_wrong_dtype", "bool or uint8"),
        ({**labelled((2, 2)), "test_masks": np.zeros((1, 6, 5), bool)}, "npz_missing_key", "'test_images'"),
    ],
)
def test_npz_validation_errors(arrays: dict[str, np.ndarray], code: str, fragment: str) -> None:
    assert fragment in refused(code, load_npz, npz(**arrays), LIMITS, name="upload")


def test_npz_object_arrays_are_refused_without_unpickling() -> None:
    names = np.array(["cat", "dog"], dtype=object)
    message = refused(
        "npz_object_array", load_npz, npz(**labelled((2, 2)), class_names=names), LIMITS, name="u"
    )
    assert "class_names" in message and "dtype=str" in message


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        (UploadLimits(max_images=3), "too_many_images"),
        (UploadLimits(max_image_pixels=29), "image_too_large"),
        (UploadLimits(max_total_pixels=100), "too_many_pixels"),
        (UploadLimits(max_bytes=100), "upload_too_large"),
        (UploadLimits(max_archive_members=1), "too_many_members"),
        (UploadLimits(max_uncompressed_bytes=100), "archive_too_large"),
    ],
)
def test_npz_limits(limits: UploadLimits, code: str) -> None:
    refused(code, load_npz, npz(**labelled((2, 2))), limits, name="upload")


def test_npz_that_is_not_a_zip_or_is_compressed_like_a_bomb() -> None:
    assert "zip" in refused("invalid_npz", load_npz, b"\x93NUMPY not an npz", LIMITS, name="x")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=np.zeros((400, 64, 64), np.uint8), labels=np.arange(400) % 2)
    refused("compression_ratio_too_high", load_npz, buffer.getvalue(), LIMITS, name="bomb")


def test_npz_member_that_is_not_an_array() -> None:
    data = zipped({"images.npy": b"not an array", "labels.npy": b"nor this"})
    assert "'images'" in refused("npz_invalid_array", load_npz, data, LIMITS, name="x")


def patched_members(data: bytes, *, flags: int = 0, method: int | None = None) -> bytes:
    """``data`` with every member's general-purpose flags and compression method overwritten, in both
    its local header and its central-directory entry (the fields zipfile checks when it opens one)."""
    patched = bytearray(data)
    for signature, flags_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        start = patched.find(signature)
        while start != -1:
            struct.pack_into("<H", patched, start + flags_at, flags)
            if method is not None:
                struct.pack_into("<H", patched, start + method_at, method)
            start = patched.find(signature, start + 4)
    return bytes(patched)


@pytest.mark.parametrize(
    ("flags", "method", "words"), [(1, None, "encrypted"), (0, 99, "compression method")]
)
def test_npz_members_zipfile_cannot_read_are_refused_not_raised(
    flags: int, method: int | None, words: str
) -> None:
    dataset = patched_members(npz(**labelled((2, 2))), flags=flags, method=method)
    assert words in refused("npz_invalid_array", load_npz, dataset, LIMITS, name="x")
    images = patched_members(npz(images=np.zeros((2, 4, 4), np.uint8)), flags=flags, method=method)
    explain = partial(read_npz_images, limits=LIMITS, name="x", max_images=8, max_total_pixels=100)
    assert words in refused("npz_invalid_array", explain, images)


def test_an_npz_header_with_a_negative_dimension_is_refused_before_any_read() -> None:
    header = io.BytesIO()  # numpy's own header parser accepts any integers as a shape
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (2, -4, 4)}
    )
    data = zipped({"images.npy": header.getvalue() + bytes(32)})
    explain = partial(read_npz_images, limits=LIMITS, name="x", max_images=8, max_total_pixels=100)
    assert "positive H, W" in refused("npz_wrong_shape", explain, data)


def test_an_npz_of_images_to_explain_may_hold_few_arrays() -> None:
    explain = partial(read_npz_images, limits=LIMITS, name="x", max_images=8, max_total_pixels=100)
    arrays = {f"extra{i}": np.zeros(1) for i in range(MAX_MEMBERS)}
    assert "x: " in refused("too_many_members", explain, npz(images=np.zeros((2, 4, 4), np.uint8), **arrays))
    assert explain(npz(images=np.zeros((2, 4, 4), np.uint8), **dict(list(arrays.items())[1:]))).shape == (
        2,
        1,
        4,
        4,
    )


# ---- class-folder zips ------------------------------------------------------------------------------


def test_folder_zip_with_root_and_clutter_loads_sorted_classes() -> None:
    members = {
        "pets/": b"",
        "pets/dog/": b"",
        **class_folders({"dog": 5, "cat": 10}, root="pets/"),
        "__MACOSX/pets/cat/._000.png": b"resource fork",
        "pets/.DS_Store": b"finder",
        "pets/cat/Thumbs.db": b"windows",
    }
    splits = load_image_folder_zip(zipped(members, zipfile.ZIP_DEFLATED), LIMITS, name="pets", seed=0)
    assert splits.class_names == ("cat", "dog")
    assert splits.train.class_counts().tolist() == [8, 4] and splits.test.class_counts().tolist() == [2, 1]
    assert splits.train.images.shape[1:] == (1, 8, 8)


def test_folder_zip_images_keep_their_pixels_and_labels() -> None:
    pixels = {"a/1.png": gray(), "b/1.png": gray(), "b/2.png": gray()}
    splits = load_image_folder_zip(zipped({k: png(v) for k, v in pixels.items()}), LIMITS, name="x")
    images = torch.cat([splits.train.images, splits.test.images])[:, 0].numpy()
    labels = torch.cat([splits.train.labels, splits.test.labels]).tolist()
    for member_name, original in pixels.items():
        index = next(i for i, image in enumerate(images) if np.array_equal(image, original))
        assert labels[index] == ("a", "b").index(member_name[0])


def test_mixed_gray_and_colour_become_rgb_and_content_decides_the_format() -> None:
    colour = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    members = {
        **class_folders({"a": 2, "b": 2}),
        "b/photo.jpg": jpeg(colour),
        "a/really_png.jpeg": png(gray()),
    }
    splits = load_image_folder_zip(zipped(members), LIMITS, name="mixed")
    assert splits.train.images.shape[1:] == (3, 8, 8)
    everything = torch.cat([splits.train.images, splits.test.images])
    assert int((everything[:, 0] == everything[:, 1]).flatten(1).all(1).sum()) == 5, "gray ones repeated"


def symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat/1.png", png(gray()))
        link = zipfile.ZipInfo("dog/1.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "evil",
    [
        lambda: zipped({**class_folders({"a": 1, "b": 1}), "../evil.png": png(gray())}),
        lambda: zipped({**class_folders({"a": 1, "b": 1}), "a/../../evil.png": png(gray())}),
        lambda: zipped({**class_folders({"a": 1, "b": 1}), "/etc/evil.png": png(gray())}),
        lambda: zipped({**class_folders({"a": 1, "b": 1}), "a\\..\\..\\evil.png": png(gray())}),
        lambda: zipped({**class_folders({"a": 1, "b": 1}), "C:/evil.png": png(gray())}),
        symlink_zip,
    ],
)
def test_unsafe_member_paths_are_refused(evil) -> None:
    assert "unsafe path" in refused("archive_path_traversal", load_image_folder_zip, evil(), LIMITS, name="z")


def test_zip_bombs_and_oversized_archives_are_refused_before_decompressing() -> None:
    bomb = zipped({**class_folders({"a": 1, "b": 1}), "a/bomb.png": bytes(2_000_000)}, zipfile.ZIP_DEFLATED)
    assert "a/bomb.png" in refused(
        "compression_ratio_too_high", load_image_folder_zip, bomb, LIMITS, name="z"
    )
    archive = zipped(class_folders({"a": 2, "b": 2}))
    small = UploadLimits(max_archive_members=3)
    assert "at most 3" in refused("too_many_members", load_image_folder_zip, archive, small, name="z")
    declared = UploadLimits(max_uncompressed_bytes=200)
    refused("archive_too_large", load_image_folder_zip, archive, declared, name="z")
    refused(
        "upload_too_large", load_image_folder_zip, archive, UploadLimits(max_bytes=len(archive) - 1), name="z"
    )
    refused("too_many_images", load_image_folder_zip, archive, UploadLimits(max_images=3), name="z")
    refused("too_many_pixels", load_image_folder_zip, archive, UploadLimits(max_total_pixels=255), name="z")


def test_huge_image_header_in_a_zip_is_refused_fast() -> None:
    archive = zipped({**class_folders({"a": 1, "b": 1}), "b/huge.png": png_with_header(50_000, 50_000)})
    start = time.perf_counter()
    assert "b/huge.png" in refused("image_too_large", load_image_folder_zip, archive, LIMITS, name="z")
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("members", "code", "fragments"),
    [
        ({"a/1.png": png(gray()), "b/1.png": png(gray())[:60]}, "corrupt_image", ["b/1.png"]),
        ({**class_folders({"a": 1, "b": 1}), "b/notes.txt": b"hello"}, "unsupported_member", ["b/notes.txt"]),
        (
            {**class_folders({"a": 1, "b": 1}), "b/2.png": b"GIF89a....."},
            "unsupported_image_format",
            ["b/2.png"],
        ),
        ({**class_folders({"a": 2, "b": 1}), "c/": b""}, "empty_class", ["'c'"]),
        (
            {**class_folders({"a": 2}), "b/1.png": png(gray(8, 9))},
            "image_size_mismatch",
            ["b/1.png", "9×8", "8×8"],
        ),
        (class_folders({"a": 3}), "too_few_classes", ["1 class", "at least 2"]),
        ({**class_folders({"a": 1, "b": 1}), "c.png": png(gray())}, "file_outside_class_folder", ["c.png"]),
        ({**class_folders({"a": 1, "b": 1}), "a/x/1.png": png(gray())}, "nesting_too_deep", ["a/x/1.png"]),
        ({}, "too_few_classes", ["0 class"]),
    ],
)
def test_folder_zip_validation_errors(members: dict[str, bytes], code: str, fragments: list[str]) -> None:
    message = refused(code, load_image_folder_zip, zipped(members), LIMITS, name="upload")
    assert all(fragment in message for fragment in fragments), message


def test_damaged_member_data_is_refused() -> None:
    content = png(gray(16, 16))
    archive = bytearray(zipped({"a/1.png": content, "b/1.png": png(gray(16, 16))}))
    offset = bytes(archive).index(content) + len(content) // 2
    archive[offset] ^= 0xFF
    assert "a/1.png" in refused("corrupt_archive", load_image_folder_zip, bytes(archive), LIMITS, name="z")


def test_not_a_zip() -> None:
    refused("invalid_zip", load_image_folder_zip, b"plain text", LIMITS, name="z")


# ---- dispatch by content ----------------------------------------------------------------------------


def test_upload_format_is_recognised_by_content_not_extension(tmp_path: Path) -> None:
    npz_named_zip = tmp_path / "digits.zip"
    npz_named_zip.write_bytes(npz(**labelled((5, 5))))
    assert load_upload(npz_named_zip).train.description.startswith("uploaded .npz")
    assert load_upload(npz_named_zip).name == "digits"
    zip_named_npz = tmp_path / "pets.npz"
    zip_named_npz.write_bytes(zipped(class_folders({"cat": 3, "dog": 3})))
    splits = load_upload(zip_named_npz, seed=1, name="my pets", image_size=16)
    assert splits.class_names == ("cat", "dog") and splits.name == "my pets"
    assert splits.train.images.shape[1:] == (1, 16, 16)


@pytest.mark.parametrize("content", [b"just text", png(gray()), b""])
def test_other_uploads_are_unsupported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "upload.npz"
    path.write_bytes(content)
    message = refused("unsupported_format", load_upload, path)
    assert ".npz" in message and "PNG/JPEG" in message


def test_upload_limits_must_be_positive() -> None:
    with pytest.raises(ConfigError) as caught:
        UploadLimits(max_images=0)
    assert caught.value.code == "invalid_upload_limits" and "max_images" in caught.value.message
