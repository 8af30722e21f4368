#!/usr/bin/env python3
"""png_pixels.py PNG X0 Y0 X1 Y1 COLOUR... - for the e2e test of the HTML
report's screenshot: how many pixels of the box [X0,X1) x [Y0,Y1) are
close to each COLOUR (#rrggbb, or "dark" for text), one count per line,
after the image's width and height. Decodes 8-bit RGB and RGBA PNGs, as
Chromium writes them, with the standard library only."""
import struct
import sys
import zlib


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit("not a PNG")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            if depth != 8 or ctype not in (2, 6):
                sys.exit("unsupported PNG: depth %d, colour type %d" % (depth, ctype))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, bpp, rows


def main():
    path, x0, y0, x1, y1 = sys.argv[1], *map(int, sys.argv[2:6])
    width, height, bpp, rows = decode(path)
    print(width, height)
    for want in sys.argv[6:]:
        n = 0
        for y in range(max(0, y0), min(height, y1)):
            row = rows[y]
            for x in range(max(0, x0), min(width, x1)):
                r, g, b = row[x * bpp], row[x * bpp + 1], row[x * bpp + 2]
                if want == "dark":
                    n += r + g + b < 200
                else:
                    wr, wg, wb = (int(want[k:k + 2], 16) for k in (1, 3, 5))
                    # a lane's box is its hue over white at some opacity:
                    # the same direction from white, any strength
                    dr, dg, db = 255 - r, 255 - g, 255 - b
                    er, eg, eb = 255 - wr, 255 - wg, 255 - wb
                    if dr + dg + db < 60:
                        continue
                    k = (dr * er + dg * eg + db * eb) / ((er * er + eg * eg + eb * eb) or 1)
                    n += k >= 0.25 and abs(dr - k * er) + abs(dg - k * eg) + abs(db - k * eb) < 24
        print(n)


main()
