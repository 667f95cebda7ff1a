"""Channels: create, retrieve, search, rename and delete.

A channel is an **index** (timestamps that strictly increase), a **data** channel bound to
one index (sample ``i`` carries the index's timestamp ``i``), or a **virtual** channel
(streamed live, never stored). Keys are never reused; names are unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union, overload

from ._native import Channel
from .telem import DataType

if TYPE_CHECKING:
    from .client import Client

ChannelRef = Union[str, int, Channel]


@dataclass
class NewChannel:
    """A channel to create (see :meth:`Channels.create`).

    Attributes:
        name: unique name.
        data_type: ``"f64"``, ``np.float32``, ``float``, ... (``"timestamp"`` for an index).
        index: the index channel (name, key or Channel) of a data channel.
        is_index: True for an index channel.
        virtual: True for a live-only channel.
        concurrency: ``"exclusive"`` (default) or ``"shared"`` among equal authorities.
        compression: how compaction stores the samples: ``"default"`` (the engine's
            ``compress`` setting), ``"off"``, ``"pcodec"`` (16-, 32- and 64-bit numbers),
            ``"zstd"`` or ``"lz4"`` (any fixed-size type). Fresh data is always raw.
    """

    name: str
    data_type: Any = None
    index: Optional[ChannelRef] = None
    is_index: bool = False
    virtual: bool = False
    concurrency: Optional[str] = None
    compression: Optional[str] = None

    def _to_dict(self) -> Dict[str, Any]:
        index = self.index
        if isinstance(index, Channel):
            index = index.key
        return {
            "name": self.name,
            "data_type": None if self.data_type is None else DataType.parse(self.data_type),
            "index": index,
            "is_index": self.is_index,
            "virtual": self.virtual,
            "concurrency": self.concurrency,
            "compression": self.compression,
        }


class Channels:
    """``client.channels``: the channel registry."""

    def __init__(self, client: "Client") -> None:
        self._client = client

    @overload
    def create(
        self,
        channels: None = None,
        *,
        name: str,
        data_type: Any = None,
        index: Optional[ChannelRef] = None,
        is_index: bool = False,
        virtual: bool = False,
        concurrency: Optional[str] = None,
        compression: Optional[str] = None,
        retrieve_if_name_exists: bool = False,
        place: Optional[str] = None,
    ) -> Channel: ...

    @overload
    def create(
        self, channels: Union[NewChannel, Dict[str, Any]], *, retrieve_if_name_exists: bool = False, place: Optional[str] = None
    ) -> Channel: ...

    @overload
    def create(
        self,
        channels: Sequence[Union[NewChannel, Dict[str, Any]]],
        *,
        retrieve_if_name_exists: bool = False,
        place: Optional[str] = None,
    ) -> List[Channel]: ...

    def create(self, channels: Any = None, *, retrieve_if_name_exists: bool = False, place: Optional[str] = None, **kwargs: Any) -> Any:
        """Create one channel (keyword arguments, a :class:`NewChannel` or a dict) or many
        (a list); all or none are created. An index named by a data channel may be
        created in the same call.

        With ``retrieve_if_name_exists=True``, channels whose names already exist are
        returned instead of failing (scripts can run twice).

        In a cluster, ``place="daq-2"`` stores the channels on that node, whichever node
        this client is connected to (data channels always live with their index).

        >>> t = client.channels.create(name="time", is_index=True)
        >>> p = client.channels.create(name="pressure", data_type="f64", index="time")
        >>> client.channels.create([NewChannel("a", "f32", index="time"), NewChannel("b", "u8", index="time")])
        >>> client.channels.create(name="strain", data_type="f32", index="time", compression="pcodec")

        Raises:
            ChannelNameTaken, InvalidChannel, InvalidIndex: see their docs.
            InvalidArgument: ``place`` outside a cluster, or naming a node it lacks.
            NodeUnavailable: ``place`` names a node that is down.
        """
        single = channels is None or isinstance(channels, (NewChannel, dict))
        if channels is None:
            items = [NewChannel(**kwargs)]
        elif kwargs:
            raise TypeError("pass either channel definitions or keyword arguments, not both")
        else:
            items = [channels] if single else list(channels)
        dicts = [(c if isinstance(c, NewChannel) else NewChannel(**c))._to_dict() for c in items]
        out = self._client._native.create_channels(dicts, retrieve_if_name_exists, place)
        return out[0] if single else out

    @overload
    def retrieve(self, channels: ChannelRef) -> Channel: ...  # type: ignore[overload-overlap]

    @overload
    def retrieve(self, channels: Sequence[ChannelRef]) -> List[Channel]: ...

    def retrieve(self, channels: Any) -> Any:
        """Channels by name, key or Channel: one, or a list in the given order.

        Raises:
            ChannelNotFound: for the first unknown channel.
        """
        out = self._client._native.channels(channels)
        if isinstance(channels, (str, int, Channel)):
            return out[0]
        return out

    def search(self, term: str = "") -> List[Channel]:
        """User channels whose name contains ``term`` (case-insensitive); all with ``""``."""
        return self._client._native.search_channels(term)

    def rename(self, channel: ChannelRef, name: str) -> Channel:
        """Rename a channel; returns the updated definition."""
        return self._client._native.rename_channel(channel, name)

    def set_compression(self, channel: ChannelRef, compression: str) -> Channel:
        """Change how compaction stores a channel's samples: ``"default"``, ``"off"``,
        ``"pcodec"``, ``"zstd"`` or ``"lz4"`` (as at creation). What is stored follows at
        the next compaction pass: what compaction wrote is recoded (decompressed only for
        ``"off"``); returns the updated definition.

        >>> client.channels.set_compression("strain", "zstd").compression
        'zstd'

        Raises:
            InvalidArgument: an unknown choice, or a system channel.
            ChannelInvalid: a choice that does not fit the channel (an index channel, a
                type the codec does not encode); the message says what to choose.
        """
        return self._client._native.set_channel_compression(channel, compression)

    def delete(self, channels: Union[ChannelRef, Sequence[ChannelRef]]) -> None:
        """Delete channels and their data. An index is refused while data channels still
        use it (delete them in the same call).

        Raises:
            ChannelNotFound, IndexInUse, ChannelBusy.
        """
        self._client._native.delete_channels(channels)
