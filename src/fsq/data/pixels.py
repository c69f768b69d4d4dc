"""Any Pillow image to uint8 pixels: how each mode is scaled to 8 bits.

``to_uint8(image, channels)`` returns a uint8 array ``(H, W, channels)``. Every rounding is half up, computed
in integers where the source is integer. The rules, by Pillow mode:

- ``L``, ``RGB``: unchanged. ``1``: 0 or 255. ``P``: the palette colours. ``CMYK``, ``YCbCr``, ``HSV``, ``RGBX``:
  Pillow's conversion to RGB (CMYK: ``R = (255 - C)(255 - K) / 255``, no colour profile applied).
- ``LAB`` (CIELAB as Pillow stores it: ``L*`` scaled to 0..255, ``a*`` and ``b*`` offset by 128): converted here
  to sRGB with the D65 white point (CIE 1976 formulas and the sRGB transfer curve), so ``L* = 100`` is white.
- 16-bit grey (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) and ``I`` (32-bit int; Pillow's mode for 16-bit data in
  some formats and versions): a value ``v`` in 0..65535 becomes ``round(v / 257)``, so 65535 is 255 and the
  scale is the same for every image. ``I`` images with values outside 0..65535 are refused (``ValueError``):
  32-bit data has no one 8-bit scale, so convert such files to 8 or 16 bits with the scaling you want.
- 16-bit colour PNGs: Pillow opens them as 8-bit ``RGB``/``RGBA`` keeping each value's high byte (``v >> 8``,
  up to one level darker than ``round(v / 257)``). ``decode_image`` reads the low bytes too (``low_bytes``), so
  16-bit RGB and RGBA get the same ``round(v / 257)`` as 16-bit grey. 16-bit grey-with-alpha PNGs (which Pillow
  opens as ``RGBA``) keep Pillow's high bytes.
- ``F`` (32-bit float): values within [0, 1] become ``round(255 v)`` (the usual float-image convention); any
  other range is stretched per image, ``round(255 (v - min) / (max - min))``, so the darkest pixel is 0 and the
  brightest 255 (relative brightness between images is then not kept: store such data as 8 or 16 bits to keep
  it). NaN or infinite values, and a constant image outside [0, 1] (no range to stretch), are refused
  (``ValueError``).
- Transparency (``RGBA``, ``LA``, ``PA``, ``RGBa``, ``P``/``L``/``RGB`` with a transparent colour): composited on
  white, ``c a + 255 (1 - a)`` for ``a`` in [0, 1], as a viewer shows it; the alpha channel is not kept.

Grey is repeated for ``channels=3``; colour becomes ITU-R 601 luma for ``channels=1`` (Pillow's ``convert("L")``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFile

_GREY_16 = ("I;16", "I;16B", "I;16L", "I;16N")
_ALPHA = ("RGBA", "RGBa", "LA", "PA")
_LOW_BYTE_RAWMODES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}  # PNG's big-endian rawmode -> its low bytes


def to_uint8(image: Image.Image, channels: int, *, low: Image.Image | None = None) -> np.ndarray:
    """``image`` (any Pillow mode) as uint8 ``(H, W, channels)`` by the module's rules.

    ``low``: the same 16-bit colour image decoded to its low bytes (from ``low_bytes``), for exact scaling.
    Raises ``ValueError`` for pixel values with no defined 8-bit scale and for modes Pillow cannot convert.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    mode = image.mode
    if mode in _GREY_16:
        pixels = _scale(np.asarray(image).astype(np.int32), None, 65535)
    elif mode == "I":
        pixels = _scale(_check_16bit(np.asarray(image)), None, 65535)
    elif mode == "F":
        pixels = _float_to_uint8(np.asarray(image))
    elif mode == "LAB":
        pixels = lab_to_srgb(np.asarray(image))
    elif low is not None:
        value = np.asarray(image).astype(np.int64) * 256 + np.asarray(low)
        pixels = _scale(value[..., :3], value[..., 3] if value.shape[-1] == 4 else None, 65535)
    elif mode in _ALPHA or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        grey = mode in ("L", "LA")
        array = np.asarray(image.convert("LA" if grey else "RGBA")).astype(np.int32)
        pixels = _scale(array[..., :-1], array[..., -1], 255)
    elif mode in ("L", "RGB"):
        pixels = np.asarray(image)
    else:
        try:
            pixels = np.asarray(image.convert("L" if mode == "1" else "RGB"))
        except ValueError as error:
            raise ValueError(f"cannot convert Pillow mode {mode!r} to 8-bit pixels: {error}") from error
    return _channels(pixels, channels)


def low_bytes(image: ImageFile.ImageFile) -> Image.Image | None:
    """For a 16-bit RGB/RGBA PNG not yet loaded, the same image decoded to each value's low byte; else ``None``.

    Pillow decodes such files to 8 bits by keeping the high bytes; decoding the file a second time with the
    little-endian rawmode (which reads the other byte of each value) recovers the rest. The result is loaded and
    the caller closes it; if this Pillow cannot decode it so, ``None`` (the high bytes are then used alone).
    """
    if image.format != "PNG" or len(image.tile) != 1 or not hasattr(image, "filename"):
        return None
    tile = image.tile[0]
    rawmode = tile.args if isinstance(tile.args, str) else None
    if rawmode not in _LOW_BYTE_RAWMODES:
        return None
    low = Image.open(image.filename)
    try:
        low.tile = [low.tile[0]._replace(args=_LOW_BYTE_RAWMODES[rawmode])]
        low.load()
    except (OSError, ValueError, AttributeError, TypeError):
        low.close()
        return None
    return low


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """Pillow ``LAB`` bytes ``(H, W, 3)`` to sRGB uint8 (D65 white, CIE 1976 L*a*b*)."""
    lab = lab.astype(np.float64)
    lightness, a, b = lab[..., 0] * (100 / 255), lab[..., 1] - 128, lab[..., 2] - 128
    fy = (lightness + 16) / 116
    f = np.stack([fy + a / 500, fy, fy - b / 200], axis=-1)
    delta = 6 / 29
    xyz = np.where(f > delta, f**3, 3 * delta**2 * (f - 4 / 29)) * np.array([0.95047, 1.0, 1.08883])
    to_rgb = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
    linear = np.clip(xyz @ to_rgb.T, 0, 1)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.floor(srgb * 255 + 0.5).clip(0, 255).astype(np.uint8)


def _scale(colour: np.ndarray, alpha: np.ndarray | None, peak: int) -> np.ndarray:
    """Integer ``colour`` in 0..peak (alpha in 0..peak, or opaque) composited on white, to uint8, rounded half up.

    In [0, 1] units the result is ``c a + (1 - a)``; times 255 that is ``(c a + peak (peak - a)) / (peak^2 / 255)``
    (opaque: ``255 c / peak``), an exact integer division whose odd divisor puts no value on a half. int32 holds
    every intermediate except 16-bit alpha's, done in int64.
    """
    if alpha is None:
        numerator, denominator = colour * 255, peak
    else:
        if peak > 255:
            colour, alpha = colour.astype(np.int64), alpha.astype(np.int64)
        alpha = alpha[..., None] if colour.ndim == alpha.ndim + 1 else alpha
        numerator, denominator = colour * alpha + peak * (peak - alpha), peak * peak // 255
    return ((2 * numerator + denominator) // (2 * denominator)).astype(np.uint8)


def _check_16bit(values: np.ndarray) -> np.ndarray:
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > 65535:
        raise ValueError(
            f"32-bit integer image with values {low}..{high}: only 0..65535 (16-bit) has a defined 8-bit scale; "
            "convert it to 8 or 16 bits"
        )
    return values.astype(np.int32)


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"float image has {int((~np.isfinite(values)).sum())} NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= 1:
        scaled = values * 255
    elif high > low:
        scaled = (values - low) * (255 / (high - low))
    else:
        raise ValueError(f"float image is constant ({low}) outside [0, 1]: there is no range to scale to 8 bits")
    return np.floor(scaled + 0.5).clip(0, 255).astype(np.uint8)


def _channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """uint8 ``(H, W)`` or ``(H, W, 1|3)`` to ``(H, W, channels)``: grey repeated, colour to luma."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[-1] == channels:
        return np.ascontiguousarray(pixels)
    if channels == 3:
        return np.repeat(pixels, 3, axis=-1)
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).convert("L"))[..., None]
