"""Reading lint input safely: files or stdin -> YAML documents with a line for every key and value.

Lint input is whatever a user copied from a web page, so the loader assumes hostile or
broken input and refuses it with one line (:class:`~promrw_doctor.core.errors.InputError`,
exit 2) before any check runs:

- missing file, a directory, unreadable file;
- a file over the size cap (default :data:`DEFAULT_MAX_BYTES` = 10 MB; the size is checked
  with ``stat`` first and reads are bounded, so a 50 MB file is refused without reading it);
- binary input (NUL bytes) or text that is not UTF-8;
- invalid YAML (``file:line:column`` of the syntax error);
- nesting deeper than :attr:`LoadLimits.max_depth` (deep nesting crashes libyaml's composer);
- YAML bombs: more than :attr:`LoadLimits.max_aliases` aliases, a recursive alias, or
  aliases that would expand the document by more than :attr:`LoadLimits.max_alias_expansion`
  nodes. The expansion is *computed* on the composed node graph (shared nodes, memoised),
  never performed;
- empty input (no YAML document in a file);
- only documents promrw-doctor does not understand (the error names the kinds seen and the
  kinds understood).

Each document keeps the safe-loaded data and its composed node graph, from which the line
of any key or value is looked up along its path, so every finding can say ``file:line``.
"""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..core.errors import InputError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
STDIN_NAME = "<stdin>"

KIND_HELM_VALUES = "HelmValues"
KIND_UNKNOWN = "unknown"
# Manifest kinds lint understands (besides kube-prometheus-stack Helm values).
MANIFEST_KINDS: tuple[str, ...] = (
    "AzureIdentity",
    "AzureIdentityBinding",
    "AzurePodIdentityException",
    "SecretProviderClass",
    "Prometheus",
    "Pod",
    "StatefulSet",
    "Deployment",
)
UNDERSTOOD = (
    "Helm values with prometheus.prometheusSpec (kube-prometheus-stack)",
    *MANIFEST_KINDS,
)

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadLimits:
    """Safety limits for lint input. The defaults are documented in ``docs`` and ``--help``."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = 128
    max_aliases: int = 10_000
    max_alias_expansion: int = 100_000  # extra nodes aliases may add beyond the document's own


@dataclass
class LintDocument:
    """One YAML document (or one item of a ``kind: List``) with its source positions.

    ``data`` is what ``yaml.safe_load`` gives. Positions come from the composed node graph
    (``root``), looked up lazily along the requested path, so indexing costs nothing for
    documents whose lines are never asked for. ``base`` is the path of this document inside
    the YAML document it came from (non-empty only for ``List`` items); all ``path``
    arguments are relative to ``data``.
    """

    file: str
    index: int  # position of the YAML document in its file (0-based)
    data: Any
    kind: str
    start_line: int
    root: Node | None = field(default=None, repr=False)
    base: Path = ()
    source_text: str = field(default="", repr=False)  # the whole input text (shared, not copied)
    _entries_cache: dict[int, dict[Any, tuple[int, Node]]] = field(default_factory=dict, repr=False)
    _duplicates: list[tuple[Path, int, int]] | None = field(default=None, repr=False)

    # -- data access
    def get(self, *path: str | int, default: Any = None) -> Any:
        """The value at ``path`` (keys and list indices), or ``default``."""
        cur = self.data
        for p in path:
            in_map = isinstance(cur, Mapping) and p in cur
            in_list = isinstance(cur, list) and isinstance(p, int) and -len(cur) <= p < len(cur)
            if in_map or in_list:
                cur = cur[p]
            else:
                return default
        return cur

    def has(self, *path: str | int) -> bool:
        sentinel = object()
        return self.get(*path, default=sentinel) is not sentinel

    # -- positions
    def _entries(self, node: MappingNode) -> dict[Any, tuple[int, Node]]:
        """``key -> (line of the key, value node)`` of a mapping node; the last duplicate wins, as in safe_load."""
        cached = self._entries_cache.get(id(node))
        if cached is None:
            cached = {}
            for key_node, value_node in node.value:
                cached[_hashable(_key_of(key_node))] = (key_node.start_mark.line + 1, value_node)
            self._entries_cache[id(node)] = cached
        return cached

    def _walk(self, path: Path) -> tuple[int, Node | None, bool]:
        """Follow ``path`` from the root: ``(best line, node reached, whole path found)``."""
        node = self.root
        best = self.start_line
        if node is None:
            return best, None, False
        for p in path:
            if isinstance(node, MappingNode):
                entry = self._entries(node).get(_hashable(p))
                if entry is None:
                    return best, node, False
                best, node = entry
            elif isinstance(node, SequenceNode) and isinstance(p, int) and -len(node.value) <= p < len(node.value):
                node = node.value[p]
                best = node.start_mark.line + 1
            else:
                return best, node, False
        return best, node, True

    def line(self, *path: str | int) -> int:
        """Line (1-based) of the key at ``path`` (or of the item, for list indices).

        Falls back to the nearest ancestor that has a line, so it always answers.
        """
        best, _, _ = self._walk(self.base + tuple(path))
        return best

    def value_line(self, *path: str | int) -> int:
        """Line of the value at ``path`` (differs from :meth:`line` for block scalars and nested maps)."""
        best, node, found = self._walk(self.base + tuple(path))
        return node.start_mark.line + 1 if found and node is not None else best

    def line_of_text(self, *path: str | int, needle: str) -> int:
        """Line of ``needle`` inside a multi-line string value (block scalar); else :meth:`line`.

        A block scalar's content starts on the line after its ``|``/``>`` indicator.
        """
        value = self.get(*path)
        if isinstance(value, str) and "\n" in value.rstrip("\n") and needle:
            for i, text in enumerate(value.splitlines()):
                if needle in text:
                    return self.value_line(*path) + 1 + i
        return self.line(*path)

    def loc(self, *path: str | int) -> str:
        """``file:line`` of ``path``: the ``location`` of a static finding."""
        return f"{self.file}:{self.line(*path)}"

    def value_loc(self, *path: str | int) -> str:
        return f"{self.file}:{self.value_line(*path)}"

    @property
    def duplicates(self) -> list[tuple[Path, int, int]]:
        """Keys written twice in one mapping: ``(path relative to data, first line, second line)``."""
        if self._duplicates is None:
            self._duplicates = _find_duplicates(self.root, self.base) if self.root is not None else []
        return self._duplicates

    def mentions(self, *needles: str) -> bool:
        """Cheap pre-filter: does the input text contain any of ``needles``? (True when unknown.)"""
        return not self.source_text or any(n in self.source_text for n in needles)

    # -- manifest fields
    @property
    def api_version(self) -> str | None:
        v = self.get("apiVersion")
        return v if isinstance(v, str) else None

    @property
    def name(self) -> str | None:
        v = self.get("metadata", "name")
        return str(v) if isinstance(v, str | int) and str(v).strip() else None

    @property
    def namespace(self) -> str | None:
        v = self.get("metadata", "namespace")
        return v if isinstance(v, str) else None

    @property
    def label(self) -> str:
        """How to name this document in a message: ``AzureIdentityBinding demo1`` or ``Helm values``."""
        if self.kind == KIND_HELM_VALUES:
            return "Helm values"
        if self.name:
            return f"{self.kind} {self.name}"
        stray = self.get("name")  # name: written at the top level instead of under metadata:
        return f"{self.kind} {stray}" if isinstance(stray, str) and stray.strip() else f"{self.kind} (unnamed)"


@dataclass(frozen=True)
class DocumentSet:
    """All documents of one lint run, in input order. Value of the ``lint.documents`` fact."""

    documents: tuple[LintDocument, ...]
    files: tuple[str, ...]

    def __iter__(self) -> Iterator[LintDocument]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)

    def of_kind(self, *kinds: str) -> list[LintDocument]:
        return [d for d in self.documents if d.kind in kinds]

    @property
    def understood(self) -> list[LintDocument]:
        return [d for d in self.documents if d.kind != KIND_UNKNOWN]


# --------------------------------------------------------------------------- reading


def read_text(
    path: str, *, stdin_text: str | None = None, limits: LoadLimits = LoadLimits()
) -> tuple[str, str]:
    """Return ``(display name, text)`` for a path (``-`` = ``stdin_text``); refuse bad input."""
    if path == "-":
        if stdin_text is None:
            raise InputError("-: no input on stdin")
        too_big = len(stdin_text) > limits.max_bytes
        if not too_big and len(stdin_text) * 4 > limits.max_bytes:
            too_big = len(stdin_text.encode("utf-8", "replace")) > limits.max_bytes
        if too_big:
            raise InputError(f"{STDIN_NAME}: input is larger than the {_human(limits.max_bytes)} limit")
        if "\x00" in stdin_text:
            raise InputError(f"{STDIN_NAME}: binary input (NUL bytes); lint expects UTF-8 YAML text")
        return STDIN_NAME, stdin_text.removeprefix("\ufeff")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except NotADirectoryError:
        raise InputError(f"{path}: no such file (a parent is not a directory)") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a directory (give the YAML files, e.g. {path.rstrip('/')}/*.yaml)")
    if stat.S_ISREG(st.st_mode) and st.st_size > limits.max_bytes:
        raise InputError(
            f"{path}: file is {_human(st.st_size)}, larger than the {_human(limits.max_bytes)} limit"
        )
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limits.max_bytes + 1)  # bounded even for pipes and growing files
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > limits.max_bytes:
        raise InputError(f"{path}: input is larger than the {_human(limits.max_bytes)} limit")
    if b"\x00" in raw:
        raise InputError(f"{path}: binary file (NUL bytes); lint expects UTF-8 YAML text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "lint expects UTF-8 YAML"
        ) from None
    return path, text


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.0f} MB" if n % (1024 * 1024) == 0 else f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


# --------------------------------------------------------------------------- parsing

_SafeLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_error(file: str, exc: yaml.YAMLError) -> InputError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc).splitlines()[0]
    if mark is not None:
        return InputError(f"{file}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}")
    if isinstance(exc, yaml.reader.ReaderError):
        return InputError(f"{file}: not valid YAML: {exc.reason} at position {exc.position}")
    return InputError(f"{file}: not valid YAML: {problem}")


def _scan_events(text: str, file: str, limits: LoadLimits) -> int:
    """Bound nesting depth and alias count from the event stream (iterative; cannot overflow)."""
    depth = 0
    aliases = 0
    try:
        for event in yaml.parse(text, Loader=_SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limits.max_depth:
                    line = event.start_mark.line + 1 if event.start_mark else 0
                    raise InputError(
                        f"{file}:{line}: nesting deeper than {limits.max_depth} levels; refusing to parse"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > limits.max_aliases:
                    line = event.start_mark.line + 1 if event.start_mark else 0
                    raise InputError(
                        f"{file}:{line}: more than {limits.max_aliases} YAML aliases (possible YAML bomb); "
                        "refusing to expand"
                    )
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc) from None
    return aliases


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def expanded_size(root: Node, limit: int) -> tuple[int, int]:
    """``(unique nodes, nodes after alias expansion)`` of a composed document, capped at ``limit + 1``.

    Aliases in a composed graph are shared node objects, so the expansion is a memoised
    sum over a DAG: linear in the document, whatever the bomb. A cycle (recursive alias)
    raises ``ValueError``.
    """
    memo: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    cap = limit + 1
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            on_path.discard(nid)
            total = 1
            for child in _children(node):
                total += memo[id(child)]
                if total > cap:
                    total = cap
                    break
            memo[nid] = total
            continue
        if nid in memo:
            continue
        kids = _children(node)
        if not kids:
            memo[nid] = 1
            continue
        on_path.add(nid)
        stack.append((node, True))
        for child in kids:
            cid = id(child)
            if cid in on_path:
                raise ValueError("recursive alias")
            if cid not in memo:
                stack.append((child, False))
    return len(memo), memo[id(root)]


_KEY_CONSTRUCTOR = yaml.constructor.SafeConstructor()


_STR_TAG = "tag:yaml.org,2002:str"


def _key_of(node: Node) -> Any:
    """The key ``safe_load`` builds for a key node (fast path for plain strings)."""
    if isinstance(node, ScalarNode):
        if node.tag == _STR_TAG:
            return node.value
        try:
            key = _KEY_CONSTRUCTOR.construct_object(node)
        except yaml.YAMLError:
            return node.value
        return key if isinstance(key, str | int | float | bool) or key is None else node.value
    return f"<{type(node).__name__}>"


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        return str(key)
    return key


def _find_duplicates(root: Node, base: Path) -> list[tuple[Path, int, int]]:
    """Keys written twice in one mapping under ``base``; shared (aliased) nodes are visited once."""
    out: list[tuple[Path, int, int]] = []
    start: Node | None = root
    for p in base:  # descend to the List item
        if isinstance(start, MappingNode):
            start = next((v for k, v in start.value if _key_of(k) == p), None)
        elif isinstance(start, SequenceNode) and isinstance(p, int) and 0 <= p < len(start.value):
            start = start.value[p]
        else:
            start = None
    if start is None:
        return out
    seen: set[int] = set()
    stack: list[tuple[Node, Path]] = [(start, ())]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, MappingNode | SequenceNode) or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = _hashable(_key_of(key_node))
                line = key_node.start_mark.line + 1
                if key in first and key != "<<":
                    out.append(((*path, key), first[key], line))
                first.setdefault(key, line)
                stack.append((value_node, (*path, key)))
        else:
            for i, item in enumerate(node.value):
                stack.append((item, (*path, i)))
    out.sort(key=lambda d: d[2])
    return out


def parse_documents(text: str, file: str, limits: LoadLimits = LoadLimits()) -> list[LintDocument]:
    """Parse every YAML document in ``text``; classify each (``List`` items become documents)."""
    aliases = _scan_events(text, file, limits)
    docs: list[LintDocument] = []
    was_enabled = gc.isenabled()
    gc.disable()  # parsing allocates many long-lived objects; the cyclic collector only slows it down
    try:
        loader = _SafeLoader(text)
        try:
            index = 0
            while loader.check_node():
                node = loader.get_node()
                if node is None:
                    continue
                if aliases:
                    _check_expansion(node, file, limits)
                data = loader.construct_document(node)
                docs.extend(_split_and_classify(file, index, data, node, text))
                index += 1
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc) from None
    except RecursionError:
        raise InputError(f"{file}: nesting too deep; refusing to parse") from None
    finally:
        if was_enabled:
            gc.enable()
    return docs


def _check_expansion(node: Node, file: str, limits: LoadLimits) -> None:
    try:
        unique, expanded = expanded_size(node, limit := 10**9)
    except ValueError:
        raise InputError(f"{file}:{node.start_mark.line + 1}: recursive YAML alias; refusing to expand") from None
    if expanded - unique > limits.max_alias_expansion or expanded > limit:
        raise InputError(
            f"{file}:{node.start_mark.line + 1}: YAML aliases would expand this document by "
            f"more than {limits.max_alias_expansion} nodes (YAML bomb); refusing to expand"
        )


def classify(data: Any) -> str:
    """:data:`KIND_HELM_VALUES`, a manifest kind from :data:`MANIFEST_KINDS`, or :data:`KIND_UNKNOWN`."""
    if not isinstance(data, Mapping):
        return KIND_UNKNOWN
    prometheus = data.get("prometheus")
    if isinstance(prometheus, Mapping) and "prometheusSpec" in prometheus:
        return KIND_HELM_VALUES
    kind = data.get("kind")
    if isinstance(kind, str) and kind.strip() in MANIFEST_KINDS:
        return kind.strip()
    return KIND_UNKNOWN


def describe_kind(data: Any) -> str:
    """How an unknown document is named in the "nothing understood" error."""
    if data is None:
        return "empty document"
    if not isinstance(data, Mapping):
        return f"a {type(data).__name__} (not a mapping)"
    kind = data.get("kind")
    if isinstance(kind, str) and kind.strip():
        return f"kind {kind.strip()}"
    if "prometheus" in data:
        return "Helm values without prometheus.prometheusSpec"
    keys = [str(k) for k in list(data)[:3]]
    return "a mapping without kind (keys: " + ", ".join(keys) + ")"


def _split_and_classify(file: str, index: int, data: Any, node: Node, text: str) -> list[LintDocument]:
    if data is None:
        return []
    start = node.start_mark.line + 1
    if isinstance(data, Mapping) and data.get("kind") == "List" and isinstance(data.get("items"), list):
        out = []
        for i, item in enumerate(data["items"]):
            doc = LintDocument(file=file, index=index, data=item, kind=classify(item), start_line=start,
                               root=node, base=("items", i), source_text=text)
            doc.start_line = doc.line()
            out.append(doc)
        return out
    return [LintDocument(file=file, index=index, data=data, kind=classify(data), start_line=start, root=node,
                         source_text=text)]


def load_documents(
    paths: Sequence[str],
    *,
    stdin_text: str | None = None,
    limits: LoadLimits = LoadLimits(),
) -> DocumentSet:
    """Read and parse every input; raise :class:`InputError` (one line) for anything unusable."""
    if not paths:
        raise InputError("lint: no files given (pass YAML files, or - for stdin)")
    documents: list[LintDocument] = []
    names: list[str] = []
    for path in paths:
        name, text = read_text(path, stdin_text=stdin_text, limits=limits)
        docs = parse_documents(text, name, limits)
        if not docs:
            raise InputError(f"{name}: empty input (no YAML document)")
        documents.extend(docs)
        names.append(name)
    if not any(d.kind != KIND_UNKNOWN for d in documents):
        seen: list[str] = []
        for d in documents:
            desc = describe_kind(d.data)
            if desc not in seen:
                seen.append(desc)
        raise InputError(
            "nothing to lint: saw " + "; ".join(seen[:6]) + ("; ..." if len(seen) > 6 else "")
            + "; understood: " + ", ".join(UNDERSTOOD)
        )
    return DocumentSet(documents=tuple(documents), files=tuple(names))
