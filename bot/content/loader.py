"""Load the `lessons/` folder into a validated `Catalog`, or list every error with file and line.

Data comes from the safe loader only, libyaml's when PyYAML has it (the pure-Python one took
most of a second for the bundled lessons, on every start and in every test that loads them). For
an error message we compose the same text into a node tree (`yaml.compose`, which builds no
objects), only then, and follow the error's location through it to the line it came from. Every
error is collected, not just the first, so an author fixes a broken file in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bot.content.catalog import Catalog
from bot.content.model import (
    Course,
    CourseMeta,
    FrameworkFile,
    Lesson,
    Module,
    ModuleHead,
    ToolkitFile,
)

M = TypeVar("M", bound=BaseModel)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

FRAMEWORK_FILE = "framework.yaml"
COURSE_FILE = "course.yaml"
_UNION_TAGS = {"card", "single", "multiple", "truefalse", "rating", "confidence"}
TOOLKIT_FILE = Path("toolkit") / "resources.yaml"


@dataclass(frozen=True, order=True)
class ContentError:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ContentInvalid(Exception):
    """Raised by `load_catalog` when the content has errors; carries all of them."""

    def __init__(self, errors: Sequence[ContentError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass
class _Source:
    """One parsed YAML file: its text, its data, and (for errors) the line of a location."""

    path: Path
    shown: str
    text: str
    data: Any

    @cached_property
    def node(self) -> yaml.Node | None:
        """The node tree, composed on the first error only (a valid file never needs it)."""
        return yaml.compose(self.text, Loader=SAFE_LOADER)

    def line_of(self, loc: Iterable[Any]) -> int:
        node = self.node
        if node is None:
            return 1
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == str(part):
                        node = value
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and part < len(node.value)
            ):
                node = node.value[part]
        return node.start_mark.line + 1


class _Collector:
    def __init__(self, root: Path):
        self.root = root
        self.errors: list[ContentError] = []

    def shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def add(self, source: _Source | Path, loc: Iterable[Any], message: str) -> None:
        if isinstance(source, _Source):
            self.errors.append(ContentError(source.shown, source.line_of(loc), message))
        else:
            self.errors.append(ContentError(self.shown(source), 1, message))

    def read(self, path: Path) -> _Source | None:
        shown = self.shown(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append(ContentError(shown, 1, f"cannot read the file: {exc}"))
            return None
        try:
            data = yaml.load(text, Loader=SAFE_LOADER)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            problem = getattr(exc, "problem", None) or str(exc)
            self.errors.append(ContentError(shown, line, f"not valid YAML: {problem}"))
            return None
        if not isinstance(data, dict):
            self.errors.append(ContentError(shown, 1, "expected a mapping at the top of the file"))
            return None
        return _Source(path, shown, text, data)

    def model(
        self, source: _Source, model: type[M], data: Any = None, prefix: Sequence[Any] = ()
    ) -> M | None:
        try:
            return model.model_validate(source.data if data is None else data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [*prefix, *(p for p in err["loc"] if p not in _UNION_TAGS)]
                where = ".".join(str(p) for p in loc) or "file"
                message = err["msg"].removeprefix("Value error, ")
                self.add(source, loc, f"{where}: {message}")
            return None


def check_catalog(root: Path) -> tuple[Catalog | None, list[ContentError]]:
    """Load everything under `root`; return the catalog (None when invalid) and all errors."""
    root = Path(root)
    col = _Collector(root)
    if not root.is_dir():
        col.add(root, (), "the lessons folder does not exist")
        return None, col.errors

    frameworks = _load_frameworks(col, root)
    folders = sorted(p for p in root.iterdir() if (p / COURSE_FILE).is_file())
    loaded = [_load_course(col, folder) for folder in folders]
    toolkit = _load_toolkit(col, root)
    catalog = Catalog([c.course for c in loaded if c.course], frameworks, toolkit)
    _cross_check(col, catalog, loaded)
    errors = sorted(set(col.errors))
    return (None if errors else catalog), errors


def load_catalog(root: Path) -> Catalog:
    catalog, errors = check_catalog(root)
    if errors or catalog is None:
        raise ContentInvalid(errors)
    return catalog


def _load_frameworks(col: _Collector, root: Path) -> FrameworkFile | None:
    path = root / FRAMEWORK_FILE
    if not path.is_file():
        col.add(path, (), "missing: the competence framework file is required")
        return None
    source = col.read(path)
    return col.model(source, FrameworkFile) if source else None


def _load_toolkit(col: _Collector, root: Path) -> ToolkitFile | None:
    path = root / TOOLKIT_FILE
    if not path.is_file():
        return None
    source = col.read(path)
    return col.model(source, ToolkitFile) if source else None


@dataclass
class _LoadedModule:
    source: _Source
    id: str
    lessons: list[tuple[int, Lesson]]
    complete: bool


@dataclass
class _LoadedCourse:
    course: Course | None
    modules: list[_LoadedModule]


def _load_module(col: _Collector, path: Path) -> _LoadedModule | None:
    """Validate lesson by lesson, so one broken lesson does not hide the others' errors."""
    source = col.read(path)
    if source is None:
        return None
    head = col.model(source, ModuleHead)
    if head is None:
        return None
    lessons = []
    for index, raw in enumerate(head.lessons):
        lesson = col.model(source, Lesson, raw, prefix=["lessons", index])
        if lesson is not None:
            lessons.append((index, lesson))
    return _LoadedModule(source, head.id, lessons, len(lessons) == len(head.lessons))


def _load_course(col: _Collector, folder: Path) -> _LoadedCourse:
    meta_source = col.read(folder / COURSE_FILE)
    meta = col.model(meta_source, CourseMeta) if meta_source else None
    paths = [p for p in sorted(folder.glob("*.yaml")) if p.name != COURSE_FILE]
    loaded = [m for p in paths if (m := _load_module(col, p)) is not None]
    if not paths:
        col.add(folder / COURSE_FILE, (), "the course has no module files")
    course = None
    if meta is not None and paths and len(loaded) == len(paths) and all(m.complete for m in loaded):
        heads = [col.model(m.source, ModuleHead) for m in loaded]
        course = Course(
            id=meta.id,
            title=meta.title,
            summary=meta.summary,
            pass_mark=meta.pass_mark,
            order=meta.order,
            modules=tuple(
                Module(id=h.id, title=h.title, lessons=[les for _, les in m.lessons])
                for h, m in zip(heads, loaded, strict=True)
                if h is not None
            ),
        )
    return _LoadedCourse(course, loaded)


def _cross_check(col: _Collector, catalog: Catalog, loaded: list[_LoadedCourse]) -> None:
    """Rules that span files: unique ids, known tags, known toolkit resources, one pre/post test."""
    seen: dict[str, str] = {}
    known_resources = {r.id for r in catalog.toolkit.resources} if catalog.toolkit else set()
    for entry in loaded:
        pretests = posttests = 0
        for module in entry.modules:
            source = module.source
            ids: list[tuple[str, list[Any]]] = [(module.id, ["id"])]
            for li, lesson in module.lessons:
                base = ["lessons", li]
                ids.append((lesson.id, [*base, "id"]))
                pretests += lesson.role == "pretest"
                posttests += lesson.role == "posttest"
                for ti, tag in enumerate(lesson.tags):
                    if catalog.frameworks is not None and not catalog.knows_tag(tag):
                        col.add(source, [*base, "tags", ti], f"unknown competence tag {tag!r}")
                for ri, res in enumerate(lesson.resources):
                    if res not in known_resources:
                        col.add(source, [*base, "resources", ri], f"unknown resource {res!r}")
                for ii, item in enumerate(lesson.items):
                    ident = getattr(item, "id", None)
                    if ident:
                        ids.append((ident, [*base, "items", ii, "id"]))
            for ident, loc in ids:
                if ident in seen:
                    col.add(source, loc, f"duplicate id {ident!r} (first defined in {seen[ident]})")
                else:
                    seen[ident] = f"{source.shown}:{source.line_of(loc)}"
        if pretests > 1 or posttests > 1:
            col.add(
                entry.modules[0].source,
                (),
                "a course has at most one pretest and one posttest lesson",
            )
