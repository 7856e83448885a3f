"""Sample queries, histograms, splits, tags, thumbnails and full-resolution media."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import grpc
from weightslab.operations import histogram, media, samples, tags
from weightslab.operations.curves import row_of

from weightslab_grpc_server._generated import experiment_pb2 as pb
from weightslab_grpc_server.convert import python_to_value
from weightslab_grpc_server.errors import invalid
from weightslab_grpc_server.handlers._base import HandlerBase, query_of
from weightslab_grpc_server.media import iter_chunks, media_of, media_source

DEFAULT_CHUNK = 64 * 1024
_COLUMN_TYPES = {"numeric": pb.COLUMN_TYPE_NUMBER, "string": pb.COLUMN_TYPE_STRING, "bool": pb.COLUMN_TYPE_BOOL}
_MODES = {pb.HISTOGRAM_MODE_UNSPECIFIED: "value", pb.HISTOGRAM_MODE_BY_VALUE: "value",
          pb.HISTOGRAM_MODE_BY_POSITION: "position"}
_MODE_ENUMS = {"value": pb.HISTOGRAM_MODE_BY_VALUE, "position": pb.HISTOGRAM_MODE_BY_POSITION}
_THUMBNAIL_ERRORS = {"invalid": "INVALID_ARGUMENT", "unavailable": "FAILED_PRECONDITION", "internal": "INTERNAL"}


def _sort(keys: Iterable[Any]) -> tuple[samples.SortKey, ...]:
    return tuple(samples.SortKey(column=k.column, descending=k.descending) for k in keys)


class SamplesHandlers(HandlerBase):
    def QuerySamples(self, request: pb.QuerySamplesRequest,
                     context: grpc.ServicerContext) -> pb.QuerySamplesResponse:
        page = request.page if request.HasField("page") else None
        result = samples.query_samples(self.experiment, samples.QuerySamplesRequest(
            query=query_of(request.query if request.HasField("query") else None, "query"),
            sort=_sort(request.sort), offset=page.offset if page is not None else None,
            limit=page.limit if page is not None else None, columns=tuple(request.columns), allow_groups=False))
        response = pb.QuerySamplesResponse(total=result.total, offset=result.offset)
        for col in result.columns:
            response.columns.add(name=col.name, type=_COLUMN_TYPES.get(col.kind, pb.COLUMN_TYPE_UNSPECIFIED))
        if not result.sample_ids:
            return response
        add_row = response.rows.add
        rows = [add_row(sample_id=i, split=s, discarded=d)
                for i, s, d in zip(result.sample_ids, result.splits, result.discarded, strict=True)]
        cells = [row.values.add for row in rows]
        for col, values in zip(result.columns, result.values, strict=True):
            if col.kind == "numeric":
                for add, v in zip(cells, values, strict=True):
                    if v is None:
                        add()
                    else:
                        add(number=v)
            elif col.kind == "bool":
                for add, v in zip(cells, values, strict=True):
                    add(bool=v)
            else:
                for add, v in zip(cells, values, strict=True):
                    add().CopyFrom(python_to_value(v))
        for row, row_tags, cats in zip(rows, result.tags, result.categories, strict=True):
            if row_tags:
                row.tags.extend(row_tags)
            if cats:
                row.categories.update(cats)
        return response

    def GetHistogram(self, request: pb.GetHistogramRequest,
                     context: grpc.ServicerContext) -> pb.GetHistogramResponse:
        mode = _MODES.get(request.mode)
        if mode is None:
            raise invalid(f"mode={request.mode}: expected HISTOGRAM_MODE_BY_VALUE or HISTOGRAM_MODE_BY_POSITION")
        result = histogram.histogram(self.experiment, histogram.HistogramRequest(
            query=query_of(request.query if request.HasField("query") else None, "query"), mode=mode,
            column=request.column, bins=request.bins, sort=_sort(request.sort),
            min=request.min if request.HasField("min") else None,
            max=request.max if request.HasField("max") else None))
        response = pb.GetHistogramResponse(mode=_MODE_ENUMS[result.mode], column=result.column,
                                           edges=result.edges, categories=result.categories, total=result.total,
                                           missing=result.missing)
        for s in result.series:
            response.series.add(split=s.split, discarded=s.discarded, counts=s.counts)
        return response

    def ListSplits(self, request: pb.ListSplitsRequest, context: grpc.ServicerContext) -> pb.ListSplitsResponse:
        response = pb.ListSplitsResponse()
        for s in samples.list_splits(self.experiment):
            response.splits.add(name=s.name, samples=s.samples, active=s.active, discarded=s.discarded)
        return response

    def ListTags(self, request: pb.ListTagsRequest, context: grpc.ServicerContext) -> pb.ListTagsResponse:
        response = pb.ListTagsResponse()
        for tag in tags.list_tags(self.experiment).tags:
            info = response.tags.add(name=tag.name, count=tag.count, discarded=tag.discarded,
                                     kind=pb.TAG_KIND_BOOLEAN if tag.kind == "boolean" else pb.TAG_KIND_CATEGORICAL)
            info.split_counts.update(tag.split_counts)
            for value in tag.values:
                info.values.add(value=value.value, count=value.count).split_counts.update(value.split_counts)
        return response

    def GetThumbnail(self, request: pb.GetThumbnailRequest,
                     context: grpc.ServicerContext) -> pb.GetThumbnailResponse:
        size = media.thumbnail_size(self.experiment, request.size)
        _, split = row_of(self.experiment, request.sample_id, request.split)
        data, mime = media.render(self.experiment, split, request.sample_id, size)
        return pb.GetThumbnailResponse(data=data, mime_type=mime)

    def GetThumbnails(self, request: pb.GetThumbnailsRequest,
                      context: grpc.ServicerContext) -> pb.GetThumbnailsResponse:
        result = media.thumbnails(self.experiment, media.ThumbnailsRequest(
            sample_ids=tuple(request.sample_ids), split=request.split, size=request.size))
        response = pb.GetThumbnailsResponse(size=result.size)
        for item in result.thumbnails:
            response.thumbnails.add(sample_id=item.sample_id, split=item.split, data=item.data,
                                    mime_type=item.mime_type, error=item.error,
                                    error_code=_THUMBNAIL_ERRORS.get(item.error_kind, ""))
        return response

    def StreamSample(self, request: pb.StreamSampleRequest,
                     context: grpc.ServicerContext) -> Iterator[pb.SampleChunk]:
        chunk = request.chunk_bytes or DEFAULT_CHUNK
        if not 1024 <= chunk <= 4 * 1024 * 1024:
            raise invalid(f"chunk_bytes={request.chunk_bytes}: expected 0 (64 KiB) or 1024..4194304")
        item = media.sample_item(self.experiment, request.sample_id, request.split)
        mime, source = media_source(media_of(item))
        for offset, data, total in iter_chunks(source, chunk):
            if not context.is_active():
                return
            if offset == 0:
                yield pb.SampleChunk(data=data, mime_type=mime, total_bytes=total, offset=0)
            else:
                yield pb.SampleChunk(data=data, offset=offset)
