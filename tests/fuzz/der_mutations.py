"""Structure-aware mutation of DER (CMS, SCEP pkiMessages, provisioning profiles): the
message is read into its TLV tree, one to three nodes are changed — content replaced
(empty, random, huge), the tag changed, the node removed, repeated or wrapped in deep
nesting, an INTEGER made enormous, a length made to lie — and the tree is written back
with every enclosing length fixed, so the change reaches the parser's inner layers
instead of failing at the outermost length."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from tests.web.mutations import flipped


@dataclass
class Node:
    tag: int
    content: bytes = b""
    children: list[Node] | None = None  # constructed: the content is these
    length_lie: bytes | None = field(default=None)  # a header written as it is
    raw: bytes | None = None  # the whole node, written as it is (deep nesting)


def parse(der: bytes) -> list[Node]:
    """DER as a list of top-level nodes (single-byte tags, definite lengths; whatever
    does not read as TLV stays as a primitive node's content)."""
    nodes: list[Node] = []
    at = 0
    while at < len(der):
        tag = der[at]
        first = der[at + 1] if at + 1 < len(der) else 0
        if first < 0x80:
            length, start = first, at + 2
        else:
            count = first & 0x7F
            length = int.from_bytes(der[at + 2 : at + 2 + count], "big")
            start = at + 2 + count
        end = start + length
        if count_invalid(first, der, at) or end > len(der):
            return [Node(0x04, der[at:])] if nodes else [Node(0x04, der)]
        body = der[start:end]
        constructed = bool(tag & 0x20) and body != b""
        nodes.append(Node(tag, body, parse(body) if constructed else None))
        at = end
    return nodes


def count_invalid(first: int, der: bytes, at: int) -> bool:
    return first == 0x80 or (first > 0x80 and (first & 0x7F) > 4) or at + 1 >= len(der)


def write(nodes: list[Node]) -> bytes:
    out = bytearray()
    for node in nodes:
        if node.raw is not None:
            out += node.raw
            continue
        content = write(node.children) if node.children is not None else node.content
        out.append(node.tag)
        out += node.length_lie if node.length_lie is not None else _length(len(content))
        out += content
    return bytes(out)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _places(nodes: list[Node]) -> list[tuple[list[Node], int]]:
    """(sibling list, index) of every node in the tree."""
    found = []
    for index, node in enumerate(nodes):
        found.append((nodes, index))
        if node.children is not None and node.raw is None:
            found.extend(_places(node.children))
    return found


def tree_nodes(nodes: list[Node]) -> list[Node]:
    """Every node of the tree, depth first."""
    return [siblings[index] for siblings, index in _places(nodes)]


SHA256 = bytes.fromhex("608648016503040201")


def with_digest_oid(der: bytes, contents: bytes) -> bytes:
    """A SignedData with its signer's digest algorithm (the last SHA-256 OID in it) an
    OBJECT IDENTIFIER of these `contents`."""
    tree = parse(der)
    digests = [node for node in tree_nodes(tree) if node.tag == 0x06 and node.content == SHA256]
    digests[-1].content = contents
    return write(tree)


def growing_arc(length: int) -> bytes:
    """OID contents of one arc `length` bytes long (every byte but the last has the high
    bit set): decoded naively, an integer that grows with every byte."""
    return b"\xff" * (length - 1) + b"\x7f"


LIES = [b"\x80", b"\x84\xff\xff\xff\xff", b"\x85\x01\x00\x00\x00\x00", b"\x00", b"\x81\x05"]


@st.composite
def der_mutated(draw: st.DrawFn, der: bytes) -> bytes:
    """`der` with one to three nodes changed (see the module docstring), and one time in
    five its bytes flipped afterwards."""
    pick = draw(st.randoms(use_true_random=False))  # uniform over nodes, see mutations.py
    tree = parse(der)
    for _ in range(pick.randint(1, 3)):
        places = _places(tree)
        if not places:  # the root itself was removed
            break
        siblings, index = pick.choice(places)
        node = siblings[index]
        action = pick.choice(
            ["content", "content", "tag", "delete", "repeat", "nest", "integer", "lie"]
        )
        if action == "content":
            node.children = None
            node.content = draw(
                st.sampled_from([b"", b"\x00", b"\xff" * 9, b"A" * 300_000])
                | st.binary(max_size=64)
            )
        elif action == "tag":
            node.tag = draw(st.integers(0, 255))
        elif action == "delete":
            del siblings[index]
        elif action == "repeat":
            siblings.insert(index, Node(node.tag, node.content, node.children))
        elif action == "nest":
            nested = write([node])  # built flat: 2,000 levels would overflow write()
            for _ in range(pick.choice([1, 2, 70, 2000])):
                nested = b"\x30" + _length(len(nested)) + nested
            siblings[index] = Node(0x30, raw=nested)
        elif action == "integer":
            node.tag, node.children = 0x02, None
            node.content = pick.choice([b"\x80" + b"\x00" * 600, b"\x7f" * 5000, b"", b"\x00"])
        else:
            node.length_lie = pick.choice(LIES)
    body = write(tree)
    return draw(flipped(body)) if pick.random() < 0.2 else body
