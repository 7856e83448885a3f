from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_STATE_UNSPECIFIED: _ClassVar[TrainingState]
    TRAINING_STATE_RUNNING: _ClassVar[TrainingState]
    TRAINING_STATE_PAUSED: _ClassVar[TrainingState]
    TRAINING_STATE_EVALUATING: _ClassVar[TrainingState]

class ColumnType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLUMN_TYPE_UNSPECIFIED: _ClassVar[ColumnType]
    COLUMN_TYPE_NUMBER: _ClassVar[ColumnType]
    COLUMN_TYPE_STRING: _ClassVar[ColumnType]
    COLUMN_TYPE_BOOL: _ClassVar[ColumnType]

class HistogramMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HISTOGRAM_MODE_UNSPECIFIED: _ClassVar[HistogramMode]
    HISTOGRAM_MODE_BY_VALUE: _ClassVar[HistogramMode]
    HISTOGRAM_MODE_BY_POSITION: _ClassVar[HistogramMode]

class TagKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TAG_KIND_UNSPECIFIED: _ClassVar[TagKind]
    TAG_KIND_BOOLEAN: _ClassVar[TagKind]
    TAG_KIND_CATEGORICAL: _ClassVar[TagKind]

class EditAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EDIT_ACTION_UNSPECIFIED: _ClassVar[EditAction]
    EDIT_ACTION_TAG: _ClassVar[EditAction]
    EDIT_ACTION_UNTAG: _ClassVar[EditAction]
    EDIT_ACTION_SET_CATEGORY: _ClassVar[EditAction]
    EDIT_ACTION_CLEAR_CATEGORY: _ClassVar[EditAction]
    EDIT_ACTION_DISCARD: _ClassVar[EditAction]
    EDIT_ACTION_RESTORE: _ClassVar[EditAction]
    EDIT_ACTION_RELABEL: _ClassVar[EditAction]
    EDIT_ACTION_RELABEL_TO_SUGGESTION: _ClassVar[EditAction]
    EDIT_ACTION_REVERT_LABEL: _ClassVar[EditAction]
TRAINING_STATE_UNSPECIFIED: TrainingState
TRAINING_STATE_RUNNING: TrainingState
TRAINING_STATE_PAUSED: TrainingState
TRAINING_STATE_EVALUATING: TrainingState
COLUMN_TYPE_UNSPECIFIED: ColumnType
COLUMN_TYPE_NUMBER: ColumnType
COLUMN_TYPE_STRING: ColumnType
COLUMN_TYPE_BOOL: ColumnType
HISTOGRAM_MODE_UNSPECIFIED: HistogramMode
HISTOGRAM_MODE_BY_VALUE: HistogramMode
HISTOGRAM_MODE_BY_POSITION: HistogramMode
TAG_KIND_UNSPECIFIED: TagKind
TAG_KIND_BOOLEAN: TagKind
TAG_KIND_CATEGORICAL: TagKind
EDIT_ACTION_UNSPECIFIED: EditAction
EDIT_ACTION_TAG: EditAction
EDIT_ACTION_UNTAG: EditAction
EDIT_ACTION_SET_CATEGORY: EditAction
EDIT_ACTION_CLEAR_CATEGORY: EditAction
EDIT_ACTION_DISCARD: EditAction
EDIT_ACTION_RESTORE: EditAction
EDIT_ACTION_RELABEL: EditAction
EDIT_ACTION_RELABEL_TO_SUGGESTION: EditAction
EDIT_ACTION_REVERT_LABEL: EditAction

class Value(_message.Message):
    __slots__ = ("number", "int", "bool", "string", "json")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    INT_FIELD_NUMBER: _ClassVar[int]
    BOOL_FIELD_NUMBER: _ClassVar[int]
    STRING_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    number: float
    int: int
    bool: bool
    string: str
    json: str
    def __init__(self, number: _Optional[float] = ..., int: _Optional[int] = ..., bool: _Optional[bool] = ..., string: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...

class SampleQuery(_message.Message):
    __slots__ = ("text", "spec_json")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    text: str
    spec_json: str
    def __init__(self, text: _Optional[str] = ..., spec_json: _Optional[str] = ...) -> None: ...

class SortKey(_message.Message):
    __slots__ = ("column", "descending")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    column: str
    descending: bool
    def __init__(self, column: _Optional[str] = ..., descending: _Optional[bool] = ...) -> None: ...

class Page(_message.Message):
    __slots__ = ("offset", "limit")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    offset: int
    limit: int
    def __init__(self, offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("name", "state", "step", "branch", "samples", "active", "discarded", "splits", "signals", "steps_per_second", "steps_left", "root_log_dir", "waiting", "server_version", "samples_seen")
    class SplitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class SignalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    DISCARDED_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    STEPS_LEFT_FIELD_NUMBER: _ClassVar[int]
    ROOT_LOG_DIR_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_SEEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: TrainingState
    step: int
    branch: str
    samples: int
    active: int
    discarded: int
    splits: _containers.ScalarMap[str, int]
    signals: _containers.ScalarMap[str, float]
    steps_per_second: float
    steps_left: int
    root_log_dir: str
    waiting: bool
    server_version: str
    samples_seen: int
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[TrainingState, str]] = ..., step: _Optional[int] = ..., branch: _Optional[str] = ..., samples: _Optional[int] = ..., active: _Optional[int] = ..., discarded: _Optional[int] = ..., splits: _Optional[_Mapping[str, int]] = ..., signals: _Optional[_Mapping[str, float]] = ..., steps_per_second: _Optional[float] = ..., steps_left: _Optional[int] = ..., root_log_dir: _Optional[str] = ..., waiting: _Optional[bool] = ..., server_version: _Optional[str] = ..., samples_seen: _Optional[int] = ...) -> None: ...

class PauseRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResumeRequest(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: int
    def __init__(self, steps: _Optional[int] = ...) -> None: ...

class ControlResponse(_message.Message):
    __slots__ = ("previous_state", "state", "step", "steps_left", "branch")
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEPS_LEFT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    previous_state: TrainingState
    state: TrainingState
    step: int
    steps_left: int
    branch: str
    def __init__(self, previous_state: _Optional[_Union[TrainingState, str]] = ..., state: _Optional[_Union[TrainingState, str]] = ..., step: _Optional[int] = ..., steps_left: _Optional[int] = ..., branch: _Optional[str] = ...) -> None: ...

class GetHyperParametersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HyperParameter(_message.Message):
    __slots__ = ("key", "applied", "requested")
    KEY_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    key: str
    applied: Value
    requested: Value
    def __init__(self, key: _Optional[str] = ..., applied: _Optional[_Union[Value, _Mapping]] = ..., requested: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class GetHyperParametersResponse(_message.Message):
    __slots__ = ("parameters", "last_error")
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    parameters: _containers.RepeatedCompositeFieldContainer[HyperParameter]
    last_error: str
    def __init__(self, parameters: _Optional[_Iterable[_Union[HyperParameter, _Mapping]]] = ..., last_error: _Optional[str] = ...) -> None: ...

class SetHyperParameterRequest(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: Value
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class SetHyperParameterResponse(_message.Message):
    __slots__ = ("key", "previous", "requested")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    key: str
    previous: Value
    requested: Value
    def __init__(self, key: _Optional[str] = ..., previous: _Optional[_Union[Value, _Mapping]] = ..., requested: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class GetCurvesRequest(_message.Message):
    __slots__ = ("signals", "since_seq", "split", "branch", "min_step", "max_step", "max_points")
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    SINCE_SEQ_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    MIN_STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    signals: _containers.RepeatedScalarFieldContainer[str]
    since_seq: int
    split: str
    branch: str
    min_step: int
    max_step: int
    max_points: int
    def __init__(self, signals: _Optional[_Iterable[str]] = ..., since_seq: _Optional[int] = ..., split: _Optional[str] = ..., branch: _Optional[str] = ..., min_step: _Optional[int] = ..., max_step: _Optional[int] = ..., max_points: _Optional[int] = ...) -> None: ...

class CurvePoint(_message.Message):
    __slots__ = ("step", "value", "seq")
    STEP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    step: int
    value: float
    seq: int
    def __init__(self, step: _Optional[int] = ..., value: _Optional[float] = ..., seq: _Optional[int] = ...) -> None: ...

class CurveSeries(_message.Message):
    __slots__ = ("signal", "split", "branch", "points", "total_points", "downsampled")
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_POINTS_FIELD_NUMBER: _ClassVar[int]
    DOWNSAMPLED_FIELD_NUMBER: _ClassVar[int]
    signal: str
    split: str
    branch: str
    points: _containers.RepeatedCompositeFieldContainer[CurvePoint]
    total_points: int
    downsampled: bool
    def __init__(self, signal: _Optional[str] = ..., split: _Optional[str] = ..., branch: _Optional[str] = ..., points: _Optional[_Iterable[_Union[CurvePoint, _Mapping]]] = ..., total_points: _Optional[int] = ..., downsampled: _Optional[bool] = ...) -> None: ...

class Marker(_message.Message):
    __slots__ = ("step", "kind", "text", "branch", "details_json")
    STEP_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    step: int
    kind: str
    text: str
    branch: str
    details_json: str
    def __init__(self, step: _Optional[int] = ..., kind: _Optional[str] = ..., text: _Optional[str] = ..., branch: _Optional[str] = ..., details_json: _Optional[str] = ...) -> None: ...

class GetCurvesResponse(_message.Message):
    __slots__ = ("series", "next_seq", "branches", "markers")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_SEQ_FIELD_NUMBER: _ClassVar[int]
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    MARKERS_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[CurveSeries]
    next_seq: int
    branches: _containers.RepeatedScalarFieldContainer[str]
    markers: _containers.RepeatedCompositeFieldContainer[Marker]
    def __init__(self, series: _Optional[_Iterable[_Union[CurveSeries, _Mapping]]] = ..., next_seq: _Optional[int] = ..., branches: _Optional[_Iterable[str]] = ..., markers: _Optional[_Iterable[_Union[Marker, _Mapping]]] = ...) -> None: ...

class BreakBySlicesRequest(_message.Message):
    __slots__ = ("signal", "tags", "split", "branches")
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    signal: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    split: str
    branches: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, signal: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., split: _Optional[str] = ..., branches: _Optional[_Iterable[str]] = ...) -> None: ...

class BreakBySlicesResponse(_message.Message):
    __slots__ = ("series", "matched_samples", "max_points")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    MATCHED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[CurveSeries]
    matched_samples: int
    max_points: int
    def __init__(self, series: _Optional[_Iterable[_Union[CurveSeries, _Mapping]]] = ..., matched_samples: _Optional[int] = ..., max_points: _Optional[int] = ...) -> None: ...

class Column(_message.Message):
    __slots__ = ("name", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: ColumnType
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[ColumnType, str]] = ...) -> None: ...

class QuerySamplesRequest(_message.Message):
    __slots__ = ("query", "sort", "page", "columns")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    query: SampleQuery
    sort: _containers.RepeatedCompositeFieldContainer[SortKey]
    page: Page
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, query: _Optional[_Union[SampleQuery, _Mapping]] = ..., sort: _Optional[_Iterable[_Union[SortKey, _Mapping]]] = ..., page: _Optional[_Union[Page, _Mapping]] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class SampleRow(_message.Message):
    __slots__ = ("sample_id", "split", "discarded", "values", "tags", "categories")
    class CategoriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    DISCARDED_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    split: str
    discarded: bool
    values: _containers.RepeatedCompositeFieldContainer[Value]
    tags: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.ScalarMap[str, str]
    def __init__(self, sample_id: _Optional[str] = ..., split: _Optional[str] = ..., discarded: _Optional[bool] = ..., values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ..., tags: _Optional[_Iterable[str]] = ..., categories: _Optional[_Mapping[str, str]] = ...) -> None: ...

class QuerySamplesResponse(_message.Message):
    __slots__ = ("total", "columns", "rows", "offset")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    total: int
    columns: _containers.RepeatedCompositeFieldContainer[Column]
    rows: _containers.RepeatedCompositeFieldContainer[SampleRow]
    offset: int
    def __init__(self, total: _Optional[int] = ..., columns: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., rows: _Optional[_Iterable[_Union[SampleRow, _Mapping]]] = ..., offset: _Optional[int] = ...) -> None: ...

class GetHistogramRequest(_message.Message):
    __slots__ = ("query", "mode", "column", "bins", "sort", "min", "max")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    query: SampleQuery
    mode: HistogramMode
    column: str
    bins: int
    sort: _containers.RepeatedCompositeFieldContainer[SortKey]
    min: float
    max: float
    def __init__(self, query: _Optional[_Union[SampleQuery, _Mapping]] = ..., mode: _Optional[_Union[HistogramMode, str]] = ..., column: _Optional[str] = ..., bins: _Optional[int] = ..., sort: _Optional[_Iterable[_Union[SortKey, _Mapping]]] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class HistogramSeries(_message.Message):
    __slots__ = ("split", "discarded", "counts")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    DISCARDED_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    split: str
    discarded: bool
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, split: _Optional[str] = ..., discarded: _Optional[bool] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class GetHistogramResponse(_message.Message):
    __slots__ = ("mode", "column", "edges", "categories", "series", "total", "missing")
    MODE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    mode: HistogramMode
    column: str
    edges: _containers.RepeatedScalarFieldContainer[float]
    categories: _containers.RepeatedScalarFieldContainer[str]
    series: _containers.RepeatedCompositeFieldContainer[HistogramSeries]
    total: int
    missing: int
    def __init__(self, mode: _Optional[_Union[HistogramMode, str]] = ..., column: _Optional[str] = ..., edges: _Optional[_Iterable[float]] = ..., categories: _Optional[_Iterable[str]] = ..., series: _Optional[_Iterable[_Union[HistogramSeries, _Mapping]]] = ..., total: _Optional[int] = ..., missing: _Optional[int] = ...) -> None: ...

class ListSplitsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SplitInfo(_message.Message):
    __slots__ = ("name", "samples", "active", "discarded")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    DISCARDED_FIELD_NUMBER: _ClassVar[int]
    name: str
    samples: int
    active: int
    discarded: int
    def __init__(self, name: _Optional[str] = ..., samples: _Optional[int] = ..., active: _Optional[int] = ..., discarded: _Optional[int] = ...) -> None: ...

class ListSplitsResponse(_message.Message):
    __slots__ = ("splits",)
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    splits: _containers.RepeatedCompositeFieldContainer[SplitInfo]
    def __init__(self, splits: _Optional[_Iterable[_Union[SplitInfo, _Mapping]]] = ...) -> None: ...

class GetTrajectoryRequest(_message.Message):
    __slots__ = ("sample_id", "split", "signals", "max_points")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    split: str
    signals: _containers.RepeatedScalarFieldContainer[str]
    max_points: int
    def __init__(self, sample_id: _Optional[str] = ..., split: _Optional[str] = ..., signals: _Optional[_Iterable[str]] = ..., max_points: _Optional[int] = ...) -> None: ...

class Trajectory(_message.Message):
    __slots__ = ("signal", "steps", "values", "branches")
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    BRANCHES_FIELD_NUMBER: _ClassVar[int]
    signal: str
    steps: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    branches: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, signal: _Optional[str] = ..., steps: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., branches: _Optional[_Iterable[str]] = ...) -> None: ...

class GetTrajectoryResponse(_message.Message):
    __slots__ = ("sample_id", "split", "trajectories")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORIES_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    split: str
    trajectories: _containers.RepeatedCompositeFieldContainer[Trajectory]
    def __init__(self, sample_id: _Optional[str] = ..., split: _Optional[str] = ..., trajectories: _Optional[_Iterable[_Union[Trajectory, _Mapping]]] = ...) -> None: ...

class GetThumbnailRequest(_message.Message):
    __slots__ = ("sample_id", "split", "size")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    split: str
    size: int
    def __init__(self, sample_id: _Optional[str] = ..., split: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class GetThumbnailResponse(_message.Message):
    __slots__ = ("data", "mime_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    mime_type: str
    def __init__(self, data: _Optional[bytes] = ..., mime_type: _Optional[str] = ...) -> None: ...

class GetThumbnailsRequest(_message.Message):
    __slots__ = ("split", "sample_ids", "size")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    split: str
    sample_ids: _containers.RepeatedScalarFieldContainer[str]
    size: int
    def __init__(self, split: _Optional[str] = ..., sample_ids: _Optional[_Iterable[str]] = ..., size: _Optional[int] = ...) -> None: ...

class Thumbnail(_message.Message):
    __slots__ = ("sample_id", "split", "data", "mime_type", "error", "error_code")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    split: str
    data: bytes
    mime_type: str
    error: str
    error_code: str
    def __init__(self, sample_id: _Optional[str] = ..., split: _Optional[str] = ..., data: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., error: _Optional[str] = ..., error_code: _Optional[str] = ...) -> None: ...

class GetThumbnailsResponse(_message.Message):
    __slots__ = ("thumbnails", "size")
    THUMBNAILS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    thumbnails: _containers.RepeatedCompositeFieldContainer[Thumbnail]
    size: int
    def __init__(self, thumbnails: _Optional[_Iterable[_Union[Thumbnail, _Mapping]]] = ..., size: _Optional[int] = ...) -> None: ...

class ListTagsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TagValue(_message.Message):
    __slots__ = ("value", "count", "split_counts")
    class SplitCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SPLIT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    value: str
    count: int
    split_counts: _containers.ScalarMap[str, int]
    def __init__(self, value: _Optional[str] = ..., count: _Optional[int] = ..., split_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class TagInfo(_message.Message):
    __slots__ = ("name", "kind", "count", "split_counts", "discarded", "values")
    class SplitCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SPLIT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    DISCARDED_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: TagKind
    count: int
    split_counts: _containers.ScalarMap[str, int]
    discarded: int
    values: _containers.RepeatedCompositeFieldContainer[TagValue]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[TagKind, str]] = ..., count: _Optional[int] = ..., split_counts: _Optional[_Mapping[str, int]] = ..., discarded: _Optional[int] = ..., values: _Optional[_Iterable[_Union[TagValue, _Mapping]]] = ...) -> None: ...

class ListTagsResponse(_message.Message):
    __slots__ = ("tags",)
    TAGS_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.RepeatedCompositeFieldContainer[TagInfo]
    def __init__(self, tags: _Optional[_Iterable[_Union[TagInfo, _Mapping]]] = ...) -> None: ...

class StreamSampleRequest(_message.Message):
    __slots__ = ("sample_id", "split", "chunk_bytes")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    split: str
    chunk_bytes: int
    def __init__(self, sample_id: _Optional[str] = ..., split: _Optional[str] = ..., chunk_bytes: _Optional[int] = ...) -> None: ...

class SampleChunk(_message.Message):
    __slots__ = ("data", "mime_type", "total_bytes", "offset")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    mime_type: str
    total_bytes: int
    offset: int
    def __init__(self, data: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., total_bytes: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class SampleIds(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class EditSamplesRequest(_message.Message):
    __slots__ = ("action", "ids", "query", "split", "tag", "value", "label")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    action: EditAction
    ids: SampleIds
    query: SampleQuery
    split: str
    tag: str
    value: str
    label: int
    def __init__(self, action: _Optional[_Union[EditAction, str]] = ..., ids: _Optional[_Union[SampleIds, _Mapping]] = ..., query: _Optional[_Union[SampleQuery, _Mapping]] = ..., split: _Optional[str] = ..., tag: _Optional[str] = ..., value: _Optional[str] = ..., label: _Optional[int] = ...) -> None: ...

class EditSamplesResponse(_message.Message):
    __slots__ = ("matched", "changed", "sample_ids", "without_suggestion")
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    WITHOUT_SUGGESTION_FIELD_NUMBER: _ClassVar[int]
    matched: int
    changed: int
    sample_ids: _containers.RepeatedScalarFieldContainer[str]
    without_suggestion: int
    def __init__(self, matched: _Optional[int] = ..., changed: _Optional[int] = ..., sample_ids: _Optional[_Iterable[str]] = ..., without_suggestion: _Optional[int] = ...) -> None: ...

class StartEvaluationRequest(_message.Message):
    __slots__ = ("split", "eval_fn", "tags", "max_steps", "resume_after", "include_discarded", "batch_size", "model")
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    EVAL_FN_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DISCARDED_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    split: str
    eval_fn: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    max_steps: int
    resume_after: bool
    include_discarded: bool
    batch_size: int
    model: str
    def __init__(self, split: _Optional[str] = ..., eval_fn: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., max_steps: _Optional[int] = ..., resume_after: _Optional[bool] = ..., include_discarded: _Optional[bool] = ..., batch_size: _Optional[int] = ..., model: _Optional[str] = ...) -> None: ...

class GetEvaluationStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CancelEvaluationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EvaluationStatus(_message.Message):
    __slots__ = ("state", "progress", "split", "metrics", "message", "details_json", "id", "eval_fn")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    EVAL_FN_FIELD_NUMBER: _ClassVar[int]
    state: str
    progress: float
    split: str
    metrics: _containers.ScalarMap[str, float]
    message: str
    details_json: str
    id: str
    eval_fn: str
    def __init__(self, state: _Optional[str] = ..., progress: _Optional[float] = ..., split: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., message: _Optional[str] = ..., details_json: _Optional[str] = ..., id: _Optional[str] = ..., eval_fn: _Optional[str] = ...) -> None: ...

class ListCheckpointsRequest(_message.Message):
    __slots__ = ("branch",)
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    branch: str
    def __init__(self, branch: _Optional[str] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("id", "step", "branch", "created_at", "note", "details_json", "parent_branch", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    PARENT_BRANCH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    step: int
    branch: str
    created_at: str
    note: str
    details_json: str
    parent_branch: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., step: _Optional[int] = ..., branch: _Optional[str] = ..., created_at: _Optional[str] = ..., note: _Optional[str] = ..., details_json: _Optional[str] = ..., parent_branch: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListCheckpointsResponse(_message.Message):
    __slots__ = ("checkpoints",)
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[Checkpoint]
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[Checkpoint, _Mapping]]] = ...) -> None: ...

class SaveCheckpointRequest(_message.Message):
    __slots__ = ("note",)
    NOTE_FIELD_NUMBER: _ClassVar[int]
    note: str
    def __init__(self, note: _Optional[str] = ...) -> None: ...

class RestoreCheckpointRequest(_message.Message):
    __slots__ = ("checkpoint_id", "step", "branch", "force", "restore_hyperparameters")
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    RESTORE_HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    checkpoint_id: str
    step: int
    branch: str
    force: bool
    restore_hyperparameters: bool
    def __init__(self, checkpoint_id: _Optional[str] = ..., step: _Optional[int] = ..., branch: _Optional[str] = ..., force: _Optional[bool] = ..., restore_hyperparameters: _Optional[bool] = ...) -> None: ...

class AgentHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentStatus(_message.Message):
    __slots__ = ("available", "initialized", "provider", "model", "message", "details_json")
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    INITIALIZED_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    available: bool
    initialized: bool
    provider: str
    model: str
    message: str
    details_json: str
    def __init__(self, available: _Optional[bool] = ..., initialized: _Optional[bool] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., message: _Optional[str] = ..., details_json: _Optional[str] = ...) -> None: ...

class AgentQueryRequest(_message.Message):
    __slots__ = ("question", "preview", "apply", "plan_id")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    APPLY_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    question: str
    preview: bool
    apply: bool
    plan_id: str
    def __init__(self, question: _Optional[str] = ..., preview: _Optional[bool] = ..., apply: _Optional[bool] = ..., plan_id: _Optional[str] = ...) -> None: ...

class AgentQueryResponse(_message.Message):
    __slots__ = ("plan_json", "plan_text", "answer", "applied", "matched", "sample_ids", "details_json", "plan_id", "dry_run")
    PLAN_JSON_FIELD_NUMBER: _ClassVar[int]
    PLAN_TEXT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_IDS_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    plan_json: str
    plan_text: str
    answer: str
    applied: bool
    matched: int
    sample_ids: _containers.RepeatedScalarFieldContainer[str]
    details_json: str
    plan_id: str
    dry_run: bool
    def __init__(self, plan_json: _Optional[str] = ..., plan_text: _Optional[str] = ..., answer: _Optional[str] = ..., applied: _Optional[bool] = ..., matched: _Optional[int] = ..., sample_ids: _Optional[_Iterable[str]] = ..., details_json: _Optional[str] = ..., plan_id: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class AgentInitRequest(_message.Message):
    __slots__ = ("provider", "api_key", "model")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    provider: str
    api_key: str
    model: str
    def __init__(self, provider: _Optional[str] = ..., api_key: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class AgentModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentModel(_message.Message):
    __slots__ = ("id", "name", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class AgentModelsResponse(_message.Message):
    __slots__ = ("models", "current")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[AgentModel]
    current: str
    def __init__(self, models: _Optional[_Iterable[_Union[AgentModel, _Mapping]]] = ..., current: _Optional[str] = ...) -> None: ...

class AgentChangeModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class AgentResetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentHistoryRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class AgentHistoryEntry(_message.Message):
    __slots__ = ("timestamp", "kind", "text", "details_json")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    timestamp: str
    kind: str
    text: str
    details_json: str
    def __init__(self, timestamp: _Optional[str] = ..., kind: _Optional[str] = ..., text: _Optional[str] = ..., details_json: _Optional[str] = ...) -> None: ...

class AgentHistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AgentHistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[AgentHistoryEntry, _Mapping]]] = ...) -> None: ...

class ExportLabelsRequest(_message.Message):
    __slots__ = ("split",)
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    split: str
    def __init__(self, split: _Optional[str] = ...) -> None: ...

class LabelCorrection(_message.Message):
    __slots__ = ("id", "split", "original", "corrected", "by", "at")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    split: str
    original: int
    corrected: int
    by: str
    at: str
    def __init__(self, id: _Optional[str] = ..., split: _Optional[str] = ..., original: _Optional[int] = ..., corrected: _Optional[int] = ..., by: _Optional[str] = ..., at: _Optional[str] = ...) -> None: ...

class ExportLabelsResponse(_message.Message):
    __slots__ = ("labels",)
    LABELS_FIELD_NUMBER: _ClassVar[int]
    labels: _containers.RepeatedCompositeFieldContainer[LabelCorrection]
    def __init__(self, labels: _Optional[_Iterable[_Union[LabelCorrection, _Mapping]]] = ...) -> None: ...
