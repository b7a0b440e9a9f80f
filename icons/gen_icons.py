#!/usr/bin/env python3
"""Writes the app's icon set with the Python standard library only (no PIL, no ImageMagick).

icons/32x32.png, 128x128.png, 128x128@2x.png, icon.png (512), icon.ico, icon.icns: a violet disc
with a white "K". Placeholder art; replace icon.png with real art and regenerate the set with
`npx tauri icon icon.png` (npm @tauri-apps/cli) when there is one.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
VIOLET = (0x5B, 0x3C, 0xC4, 255)
WHITE = (255, 255, 255, 255)
CLEAR = (0, 0, 0, 0)


def pixel(x, y, size):
    c = (size - 1) / 2.0
    if ((x - c) ** 2 + (y - c) ** 2) ** 0.5 > size * 0.47:
        return CLEAR
    # a "K" in a box of half the icon: a vertical bar and two diagonal strokes
    u, v = (x - size * 0.28) / (size * 0.44), (y - size * 0.25) / (size * 0.5)
    if 0 <= u <= 1 and 0 <= v <= 1:
        w = 0.2
        if u < w:
            return WHITE
        if abs(u - (w + abs(v - 0.5) * 2 * (1 - w))) < w * 0.8:
            return WHITE
    return VIOLET


def png(size):
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            row += bytes(pixel(x, y, size))
        rows.append(bytes(row))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")


def ico(pngs):  # ICO may embed PNG images (Vista+)
    out = struct.pack("<HHH", 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    body = b""
    for size, data in pngs:
        out += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
        body += data
    return out + body


def icns(pngs):  # ic07=128, ic08=256, ic09=512 PNG payloads
    types = {128: b"ic07", 256: b"ic08", 512: b"ic09"}
    body = b"".join(types[s] + struct.pack(">I", 8 + len(d)) + d for s, d in pngs if s in types)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


if __name__ == "__main__":
    imgs = {s: png(s) for s in (32, 128, 256, 512)}
    for name, s in (("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(imgs[s])
    with open(os.path.join(HERE, "icon.ico"), "wb") as f:
        f.write(ico([(32, imgs[32]), (256, imgs[256])]))
    with open(os.path.join(HERE, "icon.icns"), "wb") as f:
        f.write(icns([(s, imgs[s]) for s in (128, 256, 512)]))
    print("icons written to", HERE)
