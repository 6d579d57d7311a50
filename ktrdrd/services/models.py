"""``ktrdr.daemon.v1.ModelsService`` over the daemon's :class:`~ktrdrd.models.ModelRegistry`.

Names: a model is ``models/<strategy>``; a version ``models/<strategy>/versions/<n>`` or, where a
version is read, ``models/<strategy>@<alias>``. A malformed name is INVALID_ARGUMENT naming the
field; a name that does not exist is NOT_FOUND naming the model, version or alias (reasons
``MODEL_NOT_FOUND``, ``MODEL_VERSION_NOT_FOUND``, ``MODEL_ALIAS_NOT_FOUND``). Deleting a version an
alias points at is FAILED_PRECONDITION (``MODEL_VERSION_ALIASED``) naming the aliases.

Lists page with opaque tokens bound to their parent (``page_size`` 0 → 100, at most 1,000).
``GetModelVersion`` adds the full report (``metrics.json``), read in a thread. Export streams the
version's tar archive (:mod:`ktrdrd.models.export`) one chunk per thread step; the plot is
rendered in a thread (:mod:`ktrdrd.models.plot`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from ktrdr.daemon.v1 import models_pb2 as pb
from ktrdr.rpc import errors
from ktrdr.rpc.registry import Call
from ktrdr.wire import StatusCode
from ktrdrd.models import ModelRecord, ModelRegistry, VersionRecord
from ktrdrd.models.files import NAME_PATTERN, SourceError, class_names, read_report

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: An alias: a letter, then letters, digits, ``_``, ``-`` or ``.``; at most 63 characters.
ALIAS_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,62}")
_STRATEGY = NAME_PATTERN.pattern
_MODEL_NAME = re.compile(rf"models/({_STRATEGY})")
_VERSION_NAME = re.compile(rf"models/({_STRATEGY})/versions/([1-9][0-9]{{0,8}})")
_ALIAS_NAME = re.compile(rf"models/({_STRATEGY})@(.+)")


def model_name(strategy: str) -> str:
    return f"models/{strategy}"


def version_name(strategy: str, version: int) -> str:
    return f"models/{strategy}/versions/{version}"


def parse_model(name: str, field: str) -> str:
    """The strategy of ``models/<strategy>``; INVALID_ARGUMENT naming ``field`` otherwise."""
    match = _MODEL_NAME.fullmatch(name)
    if match is None:
        raise errors.invalid_argument(field, f"{name[:80]!r} is not a model name; expected models/<strategy>")
    return match.group(1)


def parse_version(name: str, field: str, *, alias_ok: bool = True) -> tuple[str, int | None, str]:
    """``(strategy, version, "")`` or ``(strategy, None, alias)``; INVALID_ARGUMENT naming ``field``."""
    match = _VERSION_NAME.fullmatch(name)
    if match is not None:
        return match.group(1), int(match.group(2)), ""
    match = _ALIAS_NAME.fullmatch(name) if alias_ok else None
    if match is not None:
        return match.group(1), None, check_alias(match.group(2), field)
    forms = "models/<strategy>/versions/<n>" + (" or models/<strategy>@<alias>" if alias_ok else "")
    raise errors.invalid_argument(field, f"{name[:80]!r} is not a model version name; expected {forms}")


def check_alias(alias: str, field: str) -> str:
    if not ALIAS_PATTERN.fullmatch(alias):
        raise errors.invalid_argument(
            field,
            f"alias {alias[:80]!r}: expected a letter, then letters, digits, '_', '-' or '.' (at most 63)",
        )
    return alias


def _page_size(size: int) -> int:
    if size < 0 or size > MAX_PAGE_SIZE:
        raise errors.invalid_argument("page_size", f"must be between 0 and {MAX_PAGE_SIZE}, got {size}")
    return size or DEFAULT_PAGE_SIZE


def _token(position: str | int, parent: str) -> str:
    raw = json.dumps({"at": position, "p": parent}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _from_token(token: str, parent: str, kind: type) -> Any:
    """The position a page token continues from; INVALID_ARGUMENT for one not issued for ``parent``."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position, issued_for = data["at"], data["p"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise errors.invalid_argument("page_token", "not a token returned by this list") from None
    if issued_for != parent or not isinstance(position, kind) or isinstance(position, bool):
        raise errors.invalid_argument("page_token", "the token was issued for another list")
    return position


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(data)
    return out


def model_message(record: ModelRecord) -> pb.Model:
    return pb.Model(
        name=model_name(record.strategy),
        strategy=record.strategy,
        version_count=record.version_count,
        latest_version=version_name(record.strategy, record.latest_version),
        aliases={alias: version_name(record.strategy, v) for alias, v in record.aliases.items()},
        create_time=_timestamp(record.create_time),
        update_time=_timestamp(record.update_time),
    )


def version_message(record: VersionRecord, report: dict[str, Any] | None = None) -> pb.ModelVersion:
    message = pb.ModelVersion(
        name=version_name(record.strategy, record.version),
        strategy=record.strategy,
        version=record.version,
        create_time=_timestamp(record.create_time),
        operation=record.operation,
        aliases=list(record.aliases),
        metrics=record.metrics,
        manifest=_struct(record.manifest),
        strategy_normalized=_struct(record.strategy_normalized),
        feature_names=record.feature_names,
        size_bytes=record.size_bytes,
    )
    if report is not None:
        message.report.CopyFrom(_struct(report))
        message.class_names.extend(class_names(report))
    return message


#: Most versions one CompareModelVersions names.
MAX_COMPARED = 100


class ModelsService:
    """The registry's RPCs; stateless beyond the registry it is given."""

    descriptor = pb.DESCRIPTOR.services_by_name["ModelsService"]

    def __init__(self, registry: ModelRegistry, core: Any = None) -> None:
        """``core``: the operations core whose ``backtest`` operations CompareModelVersions reads
        (None: versions are compared without backtests)."""
        self.registry = registry
        self.core = core

    async def _version(self, name: str, field: str = "name") -> VersionRecord:
        strategy, version, alias = parse_version(name, field)
        number = await self.registry.resolve(strategy, version, alias)
        return await self.registry.get_version(strategy, number)

    async def ListModels(self, request: pb.ListModelsRequest, call: Call) -> pb.ListModelsResponse:
        size = _page_size(request.page_size)
        after = _from_token(request.page_token, "", str) if request.page_token else ""
        found = await self.registry.list_models(after, size + 1)
        more = len(found) > size
        page = found[:size]
        return pb.ListModelsResponse(
            models=[model_message(m) for m in page],
            next_page_token=_token(page[-1].strategy, "") if more else "",
        )

    async def GetModel(self, request: pb.GetModelRequest, call: Call) -> pb.GetModelResponse:
        strategy = parse_model(request.name, "name")
        return pb.GetModelResponse(model=model_message(await self.registry.get_model(strategy)))

    async def ListModelVersions(
        self, request: pb.ListModelVersionsRequest, call: Call
    ) -> pb.ListModelVersionsResponse:
        strategy = parse_model(request.parent, "parent")
        size = _page_size(request.page_size)
        before = _from_token(request.page_token, strategy, int) if request.page_token else 2**62
        found = await self.registry.list_versions(strategy, before, size + 1)
        more = len(found) > size
        page = found[:size]
        messages = await asyncio.to_thread(
            lambda: [version_message(v) for v in page]
        )  # Structs: ~0.1 ms each
        return pb.ListModelVersionsResponse(
            versions=messages, next_page_token=_token(page[-1].version, strategy) if more else ""
        )

    async def GetModelVersion(
        self, request: pb.GetModelVersionRequest, call: Call
    ) -> pb.GetModelVersionResponse:
        record = await self._version(request.name)
        directory = self.registry.version_dir(record.strategy, record.version)
        try:
            message = await asyncio.to_thread(lambda: version_message(record, read_report(directory)))
        except SourceError as exc:
            raise errors.ApiError(StatusCode.DATA_LOSS, str(exc), "MODEL_FILES_UNREADABLE") from None
        return pb.GetModelVersionResponse(version=message)

    async def CompareModelVersions(
        self, request: pb.CompareModelVersionsRequest, call: Call
    ) -> pb.CompareModelVersionsResponse:
        from google.protobuf import json_format

        from ktrdrd.backtests.compare import deflated_sharpe, latest_backtests

        if not 1 <= len(request.names) <= MAX_COMPARED:
            raise errors.invalid_argument(
                "names", f"name 1 to {MAX_COMPARED} versions, got {len(request.names)}"
            )
        records = [await self._version(name, f"names[{n}]") for n, name in enumerate(request.names)]
        names = [version_name(r.strategy, r.version) for r in records]
        found = await latest_backtests(self.core, set(names)) if self.core is not None else {}

        def build() -> pb.CompareModelVersionsResponse:
            response = pb.CompareModelVersionsResponse(versions=[version_message(r) for r in records])
            trials: list[tuple[str, dict[str, float]]] = []
            for name in names:
                entry = response.backtests.add(version=name)
                if name in found:
                    result = {k: v for k, v in (found[name].result or {}).items() if k != "@type"}
                    entry.operation = found[name].name
                    json_format.ParseDict(result, entry.result, ignore_unknown_fields=True)
                    if name not in (t[0] for t in trials):
                        trials.append((name, dict(entry.result.metrics)))
            json_format.ParseDict(deflated_sharpe(trials), response.deflated_sharpe)
            return response

        return await asyncio.to_thread(build)

    async def DeleteModelVersion(
        self, request: pb.DeleteModelVersionRequest, call: Call
    ) -> pb.DeleteModelVersionResponse:
        strategy, version, _ = parse_version(request.name, "name", alias_ok=False)
        assert version is not None
        await self.registry.delete_version(strategy, version)
        return pb.DeleteModelVersionResponse()

    async def SetModelAlias(self, request: pb.SetModelAliasRequest, call: Call) -> pb.SetModelAliasResponse:
        strategy = parse_model(request.model, "model")
        alias = check_alias(request.alias, "alias")
        target, version, _ = parse_version(request.version, "version", alias_ok=False)
        if target != strategy:
            raise errors.invalid_argument(
                "version", f"{request.version!r} is not a version of {request.model!r}"
            )
        assert version is not None
        model = await self.registry.set_alias(strategy, alias, version)
        return pb.SetModelAliasResponse(model=model_message(model))

    async def DeleteModelAlias(
        self, request: pb.DeleteModelAliasRequest, call: Call
    ) -> pb.DeleteModelAliasResponse:
        strategy = parse_model(request.model, "model")
        alias = check_alias(request.alias, "alias")
        model = await self.registry.delete_alias(strategy, alias)
        return pb.DeleteModelAliasResponse(model=model_message(model))

    async def ExportModelVersion(
        self, request: pb.ExportModelVersionRequest, call: Call
    ) -> AsyncIterator[pb.ExportModelVersionResponse]:
        from ktrdrd.models import export

        record = await self._version(request.name)
        directory = self.registry.version_dir(record.strategy, record.version)
        prefix = f"{record.strategy}-v{record.version}"
        try:
            archive = await asyncio.to_thread(export.plan, directory, prefix)
            pieces = export.chunks(archive)
            while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                yield pb.ExportModelVersionResponse(data=piece, total_bytes=archive.total_bytes)
        except FileNotFoundError:
            raise errors.not_found(
                f"version {record.version} of model {record.strategy!r} (deleted during the export)",
                "MODEL_VERSION_NOT_FOUND",
            ) from None

    async def RenderModelPlot(
        self, request: pb.RenderModelPlotRequest, call: Call
    ) -> pb.RenderModelPlotResponse:
        from ktrdrd.models import plot

        width, height = (
            request.width_px or plot.DEFAULT_SIZE_PX[0],
            request.height_px or plot.DEFAULT_SIZE_PX[1],
        )
        for field, value in (("width_px", width), ("height_px", height)):
            if not plot.MIN_SIZE_PX <= value <= plot.MAX_SIZE_PX:
                raise errors.invalid_argument(
                    field, f"must be between {plot.MIN_SIZE_PX} and {plot.MAX_SIZE_PX} pixels, got {value}"
                )
        record = await self._version(request.name)
        name = version_name(record.strategy, record.version)
        directory = self.registry.version_dir(record.strategy, record.version)
        try:
            report = await asyncio.to_thread(read_report, directory)
            png = await asyncio.to_thread(
                plot.render_png, report, f"{record.strategy} v{record.version}", width, height
            )
        except plot.NoHistory as exc:
            raise errors.failed_precondition(f"{name}: {exc}", "MODEL_NO_HISTORY") from None
        except SourceError as exc:
            raise errors.ApiError(StatusCode.DATA_LOSS, str(exc), "MODEL_FILES_UNREADABLE") from None
        return pb.RenderModelPlotResponse(png=png, version=name)
