"""Text of a PDF for assertions: `pdftotext` (poppler-utils) when installed, else a small parser of our own.

The fallback reads what WeasyPrint writes (and much else): objects, also inside object streams; FlateDecode streams;
each font's ToUnicode CMap; and the text operators (Tf, Tj, TJ) of the content streams. Text of one BT…ET block is
joined directly (WeasyPrint draws SVG text glyph by glyph), blocks are separated by a newline. `pdf_text` collapses
whitespace either way, so assertions read the text as one line.
"""

import re
import shutil
import subprocess
import zlib

_OBJ = re.compile(rb"(\d+)\s+0\s+obj(.*?)endobj", re.S)


def pdf_text(data: bytes) -> str:
    if shutil.which("pdftotext"):
        result = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True)
        return _normalise(result.stdout.decode("utf-8", "replace"))
    return _normalise(parse_text(data))


def _normalise(text: str) -> str:
    """One space for any run of whitespace: a phrase wrapped onto two lines still reads as one."""
    return re.sub(r"\s+", " ", text)


def _stream(body: bytes) -> bytes | None:
    start = body.find(b"stream")
    if start < 0:
        return None
    raw = body[start + 6 : body.rfind(b"endstream")].lstrip(b"\r\n")
    if b"/FlateDecode" in body[:start]:
        try:
            return zlib.decompressobj().decompress(raw)
        except zlib.error:
            return None
    return raw


def _objects(data: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number → (dictionary text, decoded stream or None); object streams are unpacked."""
    objects: dict[int, tuple[bytes, bytes | None]] = {}
    for match in _OBJ.finditer(data):
        number, body = int(match.group(1)), match.group(2)
        stream = _stream(body)
        head = body[: body.find(b"stream")] if stream is not None else body
        objects[number] = (head, stream)
        if b"/ObjStm" in head and stream is not None:
            first = int(re.search(rb"/First\s+(\d+)", head).group(1))
            numbers = [int(n) for n in stream[:first].split()]
            pairs = list(zip(numbers[::2], numbers[1::2], strict=True))
            for i, (obj_number, offset) in enumerate(pairs):
                end = first + pairs[i + 1][1] if i + 1 < len(pairs) else len(stream)
                objects[obj_number] = (stream[first + offset : end], None)
    return objects


def _cmap(text: bytes) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", text, re.S):
        for src, dst in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            mapping[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be", "replace")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", text, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            base = int(dst, 16)
            for code in range(int(lo, 16), int(hi, 16) + 1):
                mapping[code] = chr(base + code - int(lo, 16))
    return mapping


def parse_text(data: bytes) -> str:
    objects = _objects(data)
    cmaps = {}  # font object number → its ToUnicode map
    for number, (head, _) in objects.items():
        ref = re.search(rb"/ToUnicode\s+(\d+)\s+0\s+R", head)
        if ref and int(ref.group(1)) in objects and objects[int(ref.group(1))][1] is not None:
            cmaps[number] = _cmap(objects[int(ref.group(1))][1])
    names = {}  # resource name (/F1) → font object number
    for head, _ in objects.values():
        for name, ref in re.findall(rb"/([A-Za-z0-9+._-]+)\s+(\d+)\s+0\s+R", head):
            if int(ref) in cmaps:
                names[name] = int(ref)
    out = []
    for _, stream in objects.values():
        if not stream or b"BT" not in stream or b"Tf" not in stream:
            continue
        font: dict[int, str] = {}
        for block in re.findall(rb"BT(.*?)ET", stream, re.S):
            line = []
            for token in re.finditer(
                rb"/([A-Za-z0-9+._-]+)\s+[\d.]+\s+Tf|\[(.*?)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj", block, re.S
            ):
                if token.group(1):
                    font = cmaps.get(names.get(token.group(1)), {})
                    continue
                hexes = re.findall(rb"<([0-9a-fA-F]*)>", token.group(2)) if token.group(2) else [token.group(3)]
                for chunk in hexes:
                    width = 4 if len(chunk) % 4 == 0 else 2
                    line += [font.get(int(chunk[i : i + width], 16), "") for i in range(0, len(chunk), width)]
            out.append("".join(line))
    return "\n".join(out)
