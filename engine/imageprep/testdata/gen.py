#!/usr/bin/python3
"""Regenerates the imageprep fixtures and their PIL references.

Needs Debian's python3-pil (Pillow 9.4, libjpeg-turbo 2.1, libwebp 1.2),
python3-numpy and libjpeg-turbo-progs (cjpeg). That Pillow reproduces
testdata/golden/images/images.safetensors byte for byte, so it is a valid
oracle for the same pipeline (gen.py's pil_rgb + resize BICUBIC).

Run from this folder: /usr/bin/python3 gen.py
Writes <case file> and <case file>.rgb.png (PIL's RGB conversion) for every
case, a few <file>.WxH.png bicubic resizes, and cases.json listing them.
The two gif_partial_*.gif inputs are hand-made (first frame smaller than
the screen) and kept as they are.
"""
import json, os, struct, subprocess, zlib
import numpy as np
from PIL import Image

GOLD = "../../../testdata/golden/images/"


def pil_rgb(path):
    im = Image.open(path)
    im.load()
    if im.mode == "RGB":
        return im
    rgba = im.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")


def base(w, h, src="lufei.jpg", box=None):
    im = Image.open(GOLD + src).convert("RGB")
    if box:
        im = im.crop(box)
    return im.resize((w, h), Image.LANCZOS)


def cjpeg(name, im, *args):
    ppm = "/tmp/_imageprep_src.ppm"
    im.save(ppm)
    subprocess.run(["cjpeg", "-quality", "88", *args, "-outfile", name, ppm], check=True)
    return name


def png16(name, arr, color_type):
    """Writes a 16-bit PNG (arr uint16 HxW or HxWxC) by hand."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    open(name, "wb").write(data)
    return name


def strip_marker(name, out, marker):
    d = open(name, "rb").read()
    i, res = 2, d[:2]
    while i < len(d):
        m = d[i + 1]
        n = d[i + 2] << 8 | d[i + 3]
        if m == 0xDA:
            res += d[i:]
            break
        if m != marker:
            res += d[i:i + 2 + n]
        i += 2 + n
    open(out, "wb").write(res)
    return out


def patch_adobe_transform(name, out, transform):
    d = bytearray(open(name, "rb").read())
    i = d.index(b"Adobe")
    d[i + 11] = transform
    open(out, "wb").write(bytes(d))
    return out


cases = []  # (file, note, diverges_from_pil)
photo = base(61, 47)
big = base(203, 157, "husky.jpg")

# JPEG: every upsampling path, progressive, restarts, color spaces.
cases.append(cjpeg("jpeg_420.jpg", photo, "-sample", "2x2,1x1,1x1"))
cases.append(cjpeg("jpeg_422.jpg", photo, "-sample", "2x1,1x1,1x1"))
cases.append(cjpeg("jpeg_440.jpg", photo, "-sample", "1x2,1x1,1x1"))
cases.append(cjpeg("jpeg_411.jpg", photo, "-sample", "4x1,1x1,1x1"))
cases.append(cjpeg("jpeg_444.jpg", photo, "-sample", "1x1,1x1,1x1"))
cases.append(cjpeg("jpeg_311.jpg", photo, "-sample", "3x1,1x1,1x1"))
cases.append(cjpeg("jpeg_mixed.jpg", photo, "-sample", "2x2,1x2,1x1"))
cases.append(cjpeg("jpeg_chroma_up.jpg", photo, "-sample", "1x1,2x2,1x1"))
cases.append(cjpeg("jpeg_progressive.jpg", big, "-progressive", "-sample", "2x2,1x1,1x1"))
cases.append(cjpeg("jpeg_progressive_422.jpg", photo, "-progressive", "-sample", "2x1,1x1,1x1"))
cases.append(cjpeg("jpeg_progressive_gray.jpg", photo, "-progressive", "-grayscale"))
cases.append(cjpeg("jpeg_restart.jpg", photo, "-restart", "3B", "-sample", "2x2,1x1,1x1"))
cases.append(cjpeg("jpeg_progressive_restart.jpg", photo, "-progressive", "-restart", "2B"))
cases.append(cjpeg("jpeg_optimized.jpg", big, "-optimize", "-quality", "40"))
cases.append(cjpeg("jpeg_rgb.jpg", photo, "-rgb"))
cases.append(cjpeg("jpeg_gray.jpg", photo, "-grayscale"))
cases.append(cjpeg("jpeg_q100.jpg", photo, "-quality", "100", "-sample", "2x2,1x1,1x1"))
cases.append(strip_marker("jpeg_420.jpg", "jpeg_nojfif.jpg", 0xE0))
# No DHT (Motion-JPEG style): libjpeg-turbo uses the standard tables,
# which cjpeg's unoptimized output was coded with.
cases.append(strip_marker("jpeg_420.jpg", "jpeg_nodht.jpg", 0xC4))
# PIL refuses a JPEG without EOI ("image file is truncated") and one with
# a bad marker after the scan (libjpeg reads on to EOI); see cases.json
# "refused".
d = open("jpeg_420.jpg", "rb").read()
assert d.endswith(b"\xff\xd9")
open("jpeg_noeoi.jpg", "wb").write(d[:-2])
open("jpeg_trailing_junk.jpg", "wb").write(d[:-2] + b"\xff\xc4\x00\x03junk" + bytes(range(256)))
refused = {"jpeg_noeoi.jpg": "truncated JPEG data", "jpeg_trailing_junk.jpg": "corrupt JPEG data (bad DHT marker)"}
for f in refused:
    try:
        Image.open(f).load()
        raise SystemExit(f + ": PIL decoded it")
    except OSError:
        pass
for (w, h) in [(1, 1), (2, 2), (3, 5), (17, 1), (1, 17), (4, 9)]:
    cases.append(cjpeg(f"jpeg_tiny_{w}x{h}.jpg", base(w, h), "-sample", "2x2,1x1,1x1"))
cases.append(cjpeg("jpeg_tiny_422_4x3.jpg", base(4, 3), "-sample", "2x1,1x1,1x1"))
photo.convert("CMYK").save("jpeg_cmyk.jpg", quality=90)
cases.append("jpeg_cmyk.jpg")
cases.append(patch_adobe_transform("jpeg_cmyk.jpg", "jpeg_ycck.jpg", 2))
cases.append(strip_marker("jpeg_cmyk.jpg", "jpeg_cmyk_noadobe.jpg", 0xEE))

# PNG: palette, transparency, gray, gray+alpha, alpha, 1-bit, 16-bit.
rgba = photo.convert("RGBA")
a = np.asarray(rgba).copy()
a[..., 3] = np.fromfunction(lambda y, x: (x * 255 // 60 + y * 3) % 256, a.shape[:2]).astype(np.uint8)
rgba = Image.fromarray(a, "RGBA")
rgba.save("png_rgba.png"); cases.append("png_rgba.png")
photo.save("png_rgb.png"); cases.append("png_rgb.png")
photo.convert("L").save("png_gray.png"); cases.append("png_gray.png")
rgba.convert("LA").save("png_gray_alpha.png"); cases.append("png_gray_alpha.png")
photo.convert("1").save("png_1bit.png"); cases.append("png_1bit.png")
pal = photo.quantize(40)
pal.save("png_palette.png"); cases.append("png_palette.png")
pal.save("png_palette_trns.png", transparency=bytes([255, 0, 128] + [255] * 5)); cases.append("png_palette_trns.png")
photo.convert("L").save("png_gray_trns.png", transparency=128); cases.append("png_gray_trns.png")
photo.save("png_rgb_trns.png", transparency=tuple(np.asarray(photo)[10, 10].tolist())); cases.append("png_rgb_trns.png")
a16 = np.asarray(rgba).astype(np.uint16) * 257 + np.fromfunction(lambda y, x, c: (x * 7 + y * 13 + c) % 256, a.shape).astype(np.uint16)
cases.append(png16("png_rgba16.png", a16, 6))
cases.append(png16("png_rgb16.png", a16[..., :3], 2))
cases.append(png16("png_gray_alpha16.png", a16[..., 1::2], 4))

# GIF, BMP, WebP.
pal.save("gif_palette.gif"); cases.append("gif_palette.gif")
pal.save("gif_transparent.gif", transparency=3); cases.append("gif_transparent.gif")
cases += ["gif_partial_transparent.gif", "gif_partial_opaque.gif"]
photo.save("bmp_rgb.bmp"); cases.append("bmp_rgb.bmp")
pal.save("bmp_palette.bmp"); cases.append("bmp_palette.bmp")
photo.convert("L").save("bmp_gray.bmp"); cases.append("bmp_gray.bmp")
photo.save("webp_lossless.webp", lossless=True); cases.append("webp_lossless.webp")
rgba.save("webp_lossless_alpha.webp", lossless=True); cases.append("webp_lossless_alpha.webp")
photo.save("webp_lossy.webp", quality=80); cases.append("webp_lossy.webp")
rgba.save("webp_lossy_alpha.webp", quality=80); cases.append("webp_lossy_alpha.webp")
big.save("webp_lossy_big.webp", quality=75); cases.append("webp_lossy_big.webp")
base(60, 46).save("webp_lossy_even.webp", quality=85); cases.append("webp_lossy_even.webp")

# 16-bit grayscale: Pillow clips I;16 to 255 (mostly white); imageprep
# keeps the high byte instead, so this reference is written by hand.
g16 = np.asarray(photo.convert("L")).astype(np.uint16) * 257
png16("png_gray16.png", g16, 0)
Image.fromarray(np.stack([g16 >> 8] * 3, -1).astype(np.uint8), "RGB").save("png_gray16.png.rgb.png")

# Refused as unsupported: arithmetic coding (libjpeg-turbo, and so PIL,
# would decode it; this package does not).
unsupported = [cjpeg("jpeg_arithmetic.jpg", photo, "-arithmetic")]

manifest = {"cases": [], "resized": [], "unsupported": unsupported, "refused": refused, "diverges": {"png_gray16.png": "high byte, not PIL's clip to 255"}}
for c in cases:
    pil_rgb(c).save(c + ".rgb.png")
    manifest["cases"].append(c)
manifest["cases"].append("png_gray16.png")

# Bicubic resizes: down, up, one axis only, tiny, and extreme ratios.
for src, sizes in [("png_rgb.png", [(13, 9), (100, 80), (61, 20), (30, 47), (61, 47), (1, 1), (224, 224), (7, 300)]),
                   ("jpeg_progressive.jpg", [(224, 224), (50, 3), (203, 1), (64, 64)])]:
    im = pil_rgb(src)
    for (w, h) in sizes:
        name = f"{src}.{w}x{h}.png"
        im.resize((w, h), resample=Image.BICUBIC).save(name)
        manifest["resized"].append({"src": src, "w": w, "h": h, "ref": name})

# Golden-folder inputs without a resized golden (sample.jpg, video.gif).
for src in ["sample.jpg", "video.gif"]:
    name = f"golden_{src}.224x224.png"
    pil_rgb(GOLD + src).resize((224, 224), resample=Image.BICUBIC).save(name)
    manifest["resized"].append({"src": GOLD + src, "w": 224, "h": 224, "ref": name, "decode": True})

json.dump(manifest, open("cases.json", "w"), indent=1)
print(len(manifest["cases"]), "cases,", len(manifest["resized"]), "resizes")
