"""Sessions in Redis through Beaker's ``ext:redis``: conditional writes in one command, and Redis's own expiry.

::

    backend = RedisBackend("ext:redis", url="redis://127.0.0.1:6379/0", timeout=1800)
    backend.replace(sid, record)   # SET XX: written only while the key is there
    backend.touch(sid)             # EXPIRE: the timer alone, the data untouched

Its URL gets ``REDIS_TIMEOUTS`` unless it sets its own; a Redis that will not serve is ``BackendUnavailable``.

With ``owner_key`` (``index_owners``) the index of sessions by owner lives in Redis beside them, shared by
every process on that Redis and key prefix. Its keys, for key prefix ``P`` (``<n>``: P's length in UTF-8 bytes,
so that no two prefixes and owners make one name):

- ``beaker_cache:P<sid>:session``: the session's pickled record (Beaker's own key, as without owners);
- ``beaker_cache:P<sid>:owner``: its owner's text, beside it, with the same TTL (absent: no owner);
- ``lembro_owners:<n>:P<owner>``: a sorted set of the owner's session ids (bare), scored by their last use
  in seconds since the epoch (the app's clock: ``owned_by``'s ``accessed``, ``max_per_owner``'s order);
- ``lembro_owners_expiry:<n>:P<owner>``: the same ids, scored by when each session expires, in milliseconds
  since the epoch by Redis's own clock (the session key's ``PTTL`` plus ``TIME``; ``inf``: no TTL).

Both sets hold the same members and expire together, when the owner's longest-lived session does (the
highest expiry score; no TTL while one session has none): every script that adds or removes an id sets
their TTL again, so a session without one that leaves (a logout, an owner change, a revoke) gives them
their TTL back; one evicted or deleted (its score never passes) is found by ``owned_by``, ``revoke`` or
the next write or touch of the owner (each checks up to ``PRUNE_BATCH`` of the ids scored ``inf``).

A session that expires takes its keys with it but leaves its id in the sets: every write or touch of an
owned session looks at up to ``PRUNE_BATCH`` ids of its owner whose expiry score has passed, drops those
whose session is gone and rescores those still there (a TTL changed behind the scripts' back: a live
session is never dropped, so ``revoke`` always reaches it). So the sets stay in proportion to the owner's
live sessions however often they sign in, each write does bounded work, and ``owned_by`` and ``revoke``, which also drop every gone id they meet, cost time in
proportion to the owner's live sessions plus those not yet pruned (fewer than ``PRUNE_BATCH`` while fewer
sessions of the owner expire between two of its writes; a burst of expiries is gone after as many writes
as it has batches). They go ``OWNER_BATCH`` sessions a script call (one call for an owner of at most that
many), so that a shared account of 100k sessions never holds Redis for long (a script blocks every client).

Every write of a session (save, replace, move, touch, destroy) is then one Lua script that updates the
index in the same atomic step, so two workers never leave it out of step with the sessions; ``max_per_owner``
is enforced in the saving script, so it holds under concurrency, and ``revoke`` goes on until the owner has
no session left but the one kept (a session moved to a new id meanwhile is revoked there). Without
``owner_key`` the plain commands above are used, at no extra cost. The scripts derive the keys of an
owner's other sessions from their ids, so they need one Redis (a Sentinel-managed one included), not a
cluster: ``ext:rediscluster`` refuses ``owner_key``.
"""

from __future__ import annotations

import pickle
import time
from typing import Any

from beaker.ext.redisnm import RedisNamespaceManager

from ..backend import KEY, OwnedSession, Record, _is_record, bounded_redis_url
from .beaker import BeakerBackend


def _redis_key(manager: Any) -> str:
    """The Redis key Beaker's manager keeps the session under (Beaker's own key format)."""
    return str(manager._format_key(KEY))


#: How many ids whose expiry has passed each write or touch of an owned session looks at in its owner's sets.
PRUNE_BATCH = 32

#: How many of an owner's sessions each script call of ``owned_by`` and ``revoke`` reads or destroys (about
#: 0.1 ms of Redis's time for 128): a shared account of 100k sessions holds Redis for no longer than that at
#: a time, between other clients' commands.
OWNER_BATCH = 128

#: What every owner script shares. ARGV[1] is the key prefix, ARGV[2] its length in characters (Beaker
#: measures key names in characters); the keys of a session are Beaker's (``_format_key``, whose name part
#: becomes its SHA-1 when the whole would pass 1024 characters).
_PRELUDE = """
-- TIME before writes: Redis 5 and later replicate a script's effects anyway; 3.2 and 4 need to be told
if redis.replicate_commands then redis.replicate_commands() end
local prefix, prefix_chars = ARGV[1], tonumber(ARGV[2])
local BATCH = """ + str(PRUNE_BATCH) + """

local function key(sid, name)
  if #name > 1010 - (prefix_chars + #sid) then name = redis.sha1hex(name) end
  return 'beaker_cache:' .. prefix .. sid .. ':' .. name
end

-- the owner's sets: its session ids by last use, and by expiry
local function owners(owner)
  return 'lembro_owners:' .. #prefix .. ':' .. prefix .. owner
end

local function expiries(owner)
  return 'lembro_owners_expiry:' .. #prefix .. ':' .. prefix .. owner
end

-- Redis's clock (the one its keys expire by), in milliseconds since the epoch
local function clock()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- when sid's session expires, as the expiry set scores it: its key's PTTL plus Redis's clock, read after
-- it (never before: the score is never earlier than the expiry); no TTL: inf
local function expiry(sid)
  local life = redis.call('PTTL', key(sid, 'session'))
  if life < 0 then return '+inf' end
  return life + clock()
end

-- sid leaves its owner's sets
local function forget(owner, sid)
  redis.call('ZREM', owners(owner), sid)
  redis.call('ZREM', expiries(owner), sid)
end

-- a session and its index entries, as a logout leaves them: gone; 1 when it was live
local function destroy(owner, sid)
  local live = redis.call('DEL', key(sid, 'session'))
  redis.call('DEL', key(sid, 'owner'))
  forget(owner, sid)
  return live
end

-- sid (owned by owner) was used at now (the app's clock, seconds): its scores in both sets
local function used(owner, sid, now)
  redis.call('ZADD', owners(owner), now, sid)
  redis.call('ZADD', expiries(owner), expiry(sid), sid)
end

-- sid, in owner's sets under a score that may be stale: gone, it is destroyed; owned by another now, it
-- leaves the sets; live, it is scored again (never dropped). Returns its new expiry score, or nil if it left
local function recheck(owner, sid)
  if redis.call('EXISTS', key(sid, 'session')) == 0 then
    destroy(owner, sid)
  elseif redis.call('GET', key(sid, 'owner')) ~= owner then
    forget(owner, sid)
  else
    local at = expiry(sid)
    redis.call('ZADD', expiries(owner), at, sid)
    return at
  end
end

-- up to BATCH ids of owner whose expiry has passed: gone ones leave, live ones are rescored (never dropped)
local function prune(owner, ms)
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', expiries(owner), '-inf', ms, 'LIMIT', 0, BATCH)) do
    recheck(owner, sid)
  end
end

-- both sets live as long as the owner's longest-lived session: until the highest expiry; inf: no TTL. The
-- ids scored inf (no TTL) are first checked, up to BATCH of them: one whose session was evicted or deleted
-- (never pruned: its score never passes) would keep the sets forever
local function follow(owner)
  for _ = 1, BATCH do
    local top = redis.call('ZREVRANGE', expiries(owner), 0, 0, 'WITHSCORES')
    if not top[1] or tonumber(top[2]) ~= math.huge or recheck(owner, top[1]) == '+inf' then break end
  end
  local last = redis.call('ZREVRANGE', expiries(owner), 0, 0, 'WITHSCORES')[2]
  if not last then return end  -- no id left: both sets are gone
  local at = tonumber(last)
  for _, set in ipairs({owners(owner), expiries(owner)}) do
    if at == nil or at == math.huge then
      redis.call('PERSIST', set)
    else
      redis.call('PEXPIREAT', set, string.format('%.0f', math.ceil(at)))  -- digits, never an exponent
    end
  end
end

-- sid leaves its owner's sets, which follow the owner's other sessions, and loses its owner (an owner
-- change, a destroy, a session found gone)
local function unindex(sid)
  local owner_key = key(sid, 'owner')
  local owner = redis.call('GET', owner_key)
  if owner then
    forget(owner, sid)
    redis.call('DEL', owner_key)
    follow(owner)
  end
end
"""

#: Save, replace or move a session's record and index it under its owner, in one step; then, with a
#: max_per_owner, destroy the owner's least recently used other live sessions until that many remain.
#: ARGV: prefix, prefix_chars, sid, now, ttl (0: none), max_per_owner (0: none), record, mode
#: ('save': unconditional; 'replace': only while sid is live, SET XX; 'move': only while old is live,
#: which is destroyed), old, and the owner's text last (absent: no owner). Returns 1 if written, else 0.
#: The record is the first write: a write Redis refuses (OOM) changes nothing.
_WRITE = _PRELUDE + """
local sid, now, ttl, most = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local record, mode, old, owner = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local session_key = key(sid, 'session')
local set = {'SET', session_key, record}
if ttl > 0 then set[4], set[5] = 'EX', ARGV[5] end
if mode == 'replace' then
  table.insert(set, 'XX')
  if not redis.call(unpack(set)) then
    unindex(sid)
    return 0
  end
elseif mode == 'move' then
  if redis.call('EXISTS', key(old, 'session')) == 0 then
    unindex(old)
    return 0
  end
  redis.call(unpack(set))
  unindex(old)
  redis.call('DEL', key(old, 'session'))
else
  redis.call(unpack(set))
end
local owner_key = key(sid, 'owner')
local before = redis.call('GET', owner_key)
if before and before ~= owner then
  forget(before, sid)
  follow(before)
end
if not owner then
  redis.call('DEL', owner_key)
  return 1
end
if ttl > 0 then redis.call('SET', owner_key, owner, 'EX', ARGV[5]) else redis.call('SET', owner_key, owner) end
used(owner, sid, now)
prune(owner, clock())
if most > 0 then
  local kept = 1
  for _, other in ipairs(redis.call('ZREVRANGE', owners(owner), 0, -1)) do
    if other ~= sid then
      if redis.call('EXISTS', key(other, 'session')) == 0 then
        destroy(owner, other)
      elseif kept < most then
        kept = kept + 1
      else
        destroy(owner, other)
      end
    end
  end
end
follow(owner)
return 1
"""

#: Restart a live session's timer (EXPIRE; EXISTS without a TTL) and score its use in its owner's sets.
#: ARGV: prefix, prefix_chars, sid, now, ttl (0: none). Returns 1 if the session was live, else 0.
_TOUCH = _PRELUDE + """
local sid, now, ttl = ARGV[3], ARGV[4], tonumber(ARGV[5])
local live
if ttl > 0 then live = redis.call('EXPIRE', key(sid, 'session'), ARGV[5]) else live = redis.call('EXISTS', key(sid, 'session')) end
if live == 0 then
  unindex(sid)
  return 0
end
local owner_key = key(sid, 'owner')
local owner = redis.call('GET', owner_key)
if owner then
  if ttl > 0 then redis.call('EXPIRE', owner_key, ARGV[5]) end
  used(owner, sid, now)
  prune(owner, clock())
  follow(owner)
end
return 1
"""

#: Destroy a session and its index entries. ARGV: prefix, prefix_chars, sid.
_DESTROY = _PRELUDE + """
local sid = ARGV[3]
unindex(sid)
return redis.call('DEL', key(sid, 'session'))
"""

#: A batch of an owner's live sessions, as a flat list: the next cursor ('0': done), then id, score, record,
#: id, ...; members whose session is gone (or owned by another now) are pruned, and the sets follow. Nothing
#: is refreshed, and nothing written when nothing is pruned (a read-only replica answers).
#: ARGV: prefix, prefix_chars, owner, cursor ('0' to start), limit. An owner with at most ``limit`` ids is
#: read whole at the start (ZREVRANGE: most recently used first); a larger one by ZSCAN, about ``limit`` ids a
#: call, in no order: ZSCAN returns every id that stays in the set from the first call to the last, however
#: often it is rescored meanwhile (a session used during the listing), and may return one twice.
_OWNED = _PRELUDE + """
local owner, cursor, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
local listed
if cursor == '0' and redis.call('ZCARD', owners(owner)) <= limit then
  listed = redis.call('ZREVRANGE', owners(owner), 0, -1, 'WITHSCORES')
else
  local scanned = redis.call('ZSCAN', owners(owner), cursor, 'COUNT', limit)
  cursor, listed = scanned[1], scanned[2]
end
local found = {cursor}
local pruned = false
for i = 1, #listed, 2 do
  local sid = listed[i]
  local record = redis.call('GET', key(sid, 'session'))
  if not record then
    destroy(owner, sid)
    pruned = true
  elseif redis.call('GET', key(sid, 'owner')) ~= owner then
    forget(owner, sid)
    pruned = true
  else
    table.insert(found, sid)
    table.insert(found, listed[i + 1])
    table.insert(found, record)
  end
end
if pruned then follow(owner) end
return found
"""

#: Destroy up to ``limit`` live sessions of an owner but one, least recently used first; returns how many,
#: and how many of the owner's ids are left but the one kept. ARGV: prefix, prefix_chars, owner, limit, and
#: the id to keep last (absent: none). Every id it looks at leaves the set but the one kept, so each call
#: makes progress.
_REVOKE = _PRELUDE + """
local owner, limit, keep = ARGV[3], tonumber(ARGV[4]), ARGV[5]
local count, seen = 0, 0
for _, sid in ipairs(redis.call('ZRANGE', owners(owner), 0, limit)) do
  if redis.call('GET', key(sid, 'owner')) ~= owner then
    if redis.call('EXISTS', key(sid, 'session')) == 0 then destroy(owner, sid) else forget(owner, sid) end
    seen = seen + 1
  elseif sid == keep and redis.call('EXISTS', key(sid, 'session')) == 1 then
    -- the one kept
  else
    count = count + destroy(owner, sid)
    seen = seen + 1
  end
  if seen == limit then break end
end
if seen > 0 then follow(owner) end
local left = redis.call('ZCARD', owners(owner))
if keep and redis.call('ZSCORE', owners(owner), keep) then left = left - 1 end
return {count, left}
"""

_SCRIPTS = {"write": _WRITE, "touch": _TOUCH, "destroy": _DESTROY, "owned": _OWNED, "revoke": _REVOKE}


class RedisBackend(BeakerBackend):
    """Session records in Redis (or a Redis cluster) through Beaker's manager: reads, saves and destroys as
    any Beaker backend, but ``replace``, ``touch`` and ``move``'s test-and-delete are each one atomic Redis
    command, and keys expire by their TTL, so loaded records need no age check here.

    With ``owner_key`` every write is one Lua script that also keeps the owner index (see the module);
    ``ext:redis`` indexes owners, ``ext:rediscluster`` does not (an owner's sessions live in many slots).
    """

    redis = True

    def __init__(self, type: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(type, *args, **kwargs)
        #: Beaker's single-Redis manager, whose key format the scripts follow; not a cluster's.
        self.indexes_owners = self.namespace_class is RedisNamespaceManager
        self._scripts: dict[str, Any] = {}

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        given = super()._options(options)
        if isinstance(options.get("url"), str):
            given["url"] = bounded_redis_url(options["url"])
        return given

    def _expired(self, record: Record) -> bool:
        return False  # Redis expires keys itself

    def save(self, sid: str, record: Record, timeout: float | None = None) -> None:
        if self.owner_key is None:
            super().save(sid, record, timeout)
        else:
            self._write("save", sid, record, timeout)

    def replace(self, sid: str, record: Record, timeout: float | None = None) -> bool:
        """``SET XX``: one atomic step, so a logout just before it is final."""
        if self.owner_key is not None:
            return self._write("replace", sid, record, timeout)
        manager = self._manager(sid, timeout)
        with self._reaching():
            return bool(manager.client.set(_redis_key(manager), pickle.dumps(record), ex=manager.timeout, xx=True))

    def move(self, old: str, new: str, record: Record, timeout: float | None = None) -> bool:
        """With owners, one script: ``new`` is written and ``old`` destroyed only while ``old`` is live."""
        if self.owner_key is None:
            return super().move(old, new, record, timeout)
        return self._write("move", new, record, timeout, old)

    def _take(self, sid: str) -> bool:
        manager = self._manager(sid)
        with self._reaching():
            return bool(manager.client.delete(_redis_key(manager)) == 1)

    def touch(self, sid: str, timeout: float | None = None) -> bool:
        """``EXPIRE`` refreshes the timer alone (``EXISTS`` without a timeout); with owners, in the script that
        also scores the use in the owner's index."""
        manager = self._manager(sid, timeout)
        if self.owner_key is not None:
            return bool(self._run("touch", manager, sid, time.time(), manager.timeout or 0))
        with self._reaching():
            key = _redis_key(manager)
            return bool(manager.client.expire(key, manager.timeout) if manager.timeout else manager.client.exists(key))

    def destroy(self, sid: str) -> None:
        if self.owner_key is None:
            super().destroy(sid)
        else:
            self._run("destroy", self._manager(sid), sid)

    def owned_by(self, owner: str) -> list[OwnedSession]:
        """The owner's sessions, read (``GET``, which refreshes nothing) by the script that checks their owner and
        prunes the gone ones: in one call for an owner of at most ``OWNER_BATCH`` sessions, else about that
        many a call (``ZSCAN``), so that no call holds Redis for long however many sessions a shared account
        has. Every session that stays the owner's through the listing is listed, used meanwhile or not; one
        made or moved to a new id (a sign-in) meanwhile may be missing from this listing (its old id, if not
        read yet, is gone). A record that does not load is left out (its own client's next request drops it).
        """
        manager = self._manager("")
        found: dict[bytes | str, tuple[float, bytes]] = {}
        cursor: bytes | str = "0"
        while True:
            reply = self._run("owned", manager, owner, cursor, OWNER_BATCH)
            cursor = reply[0]
            for i in range(1, len(reply), 3):
                sid, score, stored = reply[i : i + 3]
                found[sid] = (float(score), stored)  # an id ZSCAN returns again: its later reading
            if int(cursor) == 0:
                break
        owned = []
        for sid, (score, stored) in sorted(found.items(), key=lambda item: (item[1][0], item[0]), reverse=True):
            record = _unpickled(stored)
            if _is_record(record):
                owned.append(OwnedSession(_text(sid), record["created"], score, record["data"]))
        return owned

    def revoke(self, owner: str, keep: str | None = None) -> int:
        """Every live session of ``owner`` but ``keep`` is destroyed, up to ``OWNER_BATCH`` a script call, so
        that no call holds Redis for long however many sessions a shared account has; one call for an owner
        of at most that many.

        The calls go on until the owner has no id left but ``keep``: a session moved to a new id between two
        calls (a sign-in; its new id joins the owner's set) is revoked there. Sessions made meanwhile are
        revoked too. So that a stream of new sign-ins cannot keep it going, it stops after as many calls as the
        owner's ids took at the start, plus two: every session that existed at the start, moved or not, is
        revoked as long as fewer than ``OWNER_BATCH`` new ones are made during the revoke.
        """
        manager = self._manager("")
        kept = () if keep is None else (keep,)
        count, left = self._run("revoke", manager, owner, OWNER_BATCH, *kept)
        rounds = int(left) // OWNER_BATCH + 2
        while left and rounds:
            rounds -= 1
            destroyed, left = self._run("revoke", manager, owner, OWNER_BATCH, *kept)
            count += destroyed
        return int(count)

    def _write(self, mode: str, sid: str, record: Record, timeout: float | None, old: str = "") -> bool:
        """The write script for ``mode``; the owner is checked (``ValueError``) before anything is written."""
        owner = self.owner(record)
        manager = self._manager(sid, timeout)
        return bool(self._run("write", manager, sid, time.time(), manager.timeout or 0, self.max_per_owner or 0,
                              pickle.dumps(record), mode, old, *(() if owner is None else (owner,))))

    def _run(self, name: str, manager: Any, *args: Any) -> Any:
        """Run the owner script ``name`` with the key prefix and ``args`` on ``manager``'s client."""
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = manager.client.register_script(_SCRIPTS[name])
        with self._reaching():
            return script(args=[self.key_prefix, len(self.key_prefix), *args], client=manager.client)


def _unpickled(stored: bytes) -> Any:
    """A stored record, unpickled; ``None`` when it does not load (a class renamed in a deploy)."""
    try:
        return pickle.loads(stored)
    except Exception:  # noqa: BLE001 - whatever unpickling raises, the record is no session to list
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
