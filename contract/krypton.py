"""KRYPTON registry contract for NEO N3 (neo3-boa 1.3.0).

SIP providers register where their service lives (``deploy``), users register
which provider and which device (a public RFC 4122 v4 UUID) they use
(``register``), and anyone can look both up (``query``, ``location``,
``providers``). A user may also publish an optional device key: a compressed
P-256 public key the user authorises so a phone can sign SIP authentication
without the wallet's main key.

Same functions and meaning as KRYPTON v1 (NEO 2), moved to N3 conventions:
one ABI method per operation, typed events, ``abort`` with a reason instead of
returning false, prefixed fixed-width storage keys, and an owner-only
``update``.

neo3-boa 1.3.0 pitfalls respected here (see shared/notes):
* ``_deploy`` only calls helpers (local re-assignment there is miscompiled);
* ``and``/``or`` do not short-circuit, so guards are nested ``if``s;
* ``abort('msg')`` compiles to ABORTMSG, so the reason reaches the FAULT text.
"""
from typing import Any, Optional

from boa3.sc import runtime, storage
from boa3.sc.compiletime import NeoMetadata, public
from boa3.sc.contracts import ContractManagement
from boa3.sc.types import ECPoint, FindOptions, UInt160
from boa3.sc.utils import CreateNewEvent, abort, to_bytes, to_str


def manifest_metadata() -> NeoMetadata:
    meta = NeoMetadata()
    meta.name = 'Krypton'
    meta.description = 'KRYPTON softphone registry: SIP providers and their users'
    return meta


# ---------------------------------------------------------------------------
# Storage layout. One prefix byte, then a fixed-width 20-byte script hash
# (every UInt160 argument is checked to be exactly 20 bytes), so keys of
# different kinds can never collide.
# ---------------------------------------------------------------------------
OWNER_KEY = b'\x01'              # -> owner UInt160 (the deploying sender)
PROVIDER_PREFIX = b'\x10'        # + provider -> location (str)
USER_PROVIDER_PREFIX = b'\x20'   # + user -> provider UInt160
USER_UUID_PREFIX = b'\x21'       # + user -> uuid (str)
USER_KEY_PREFIX = b'\x22'        # + user -> device key (33-byte ECPoint)


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------
on_provider_deployed = CreateNewEvent(
    [('provider', UInt160), ('location', str)],
    'ProviderDeployed'
)
on_provider_undeployed = CreateNewEvent(
    [('provider', UInt160)],
    'ProviderUndeployed'
)
on_user_registered = CreateNewEvent(
    [('user', UInt160), ('provider', UInt160), ('uuid', str)],
    'UserRegistered'
)
on_user_unregistered = CreateNewEvent(
    [('user', UInt160)],
    'UserUnregistered'
)
# key is null when the device key is cleared
on_device_key_changed = CreateNewEvent(
    [('user', UInt160), ('key', ECPoint | None)],
    'DeviceKeyChanged'
)


# ---------------------------------------------------------------------------
# Validation helpers (all abort with a reason)
# ---------------------------------------------------------------------------
def require_hash160(value: UInt160):
    # A 33-byte value would make check_witness treat it as a public key and
    # would break the fixed key width.
    if len(value) != 20:
        abort('invalid script hash: expected 20 bytes')


def require_witness(account: UInt160, message: str):
    require_hash160(account)
    if not runtime.check_witness(account):
        abort(message)


def is_hex_digit(c: int) -> bool:
    if c >= 0x30:               # 0-9
        if c <= 0x39:
            return True
    if c >= 0x61:               # a-f
        if c <= 0x66:
            return True
    if c >= 0x41:               # A-F
        if c <= 0x46:
            return True
    return False


def is_label_char(c: int) -> bool:
    # letters, digits, hyphen, underscore
    if is_hex_digit(c):
        return True
    if c >= 0x61:               # a-z
        if c <= 0x7a:
            return True
    if c >= 0x41:               # A-Z
        if c <= 0x5a:
            return True
    if c == 0x2d:               # '-'
        return True
    if c == 0x5f:               # '_'
        return True
    return False


def valid_port(data: bytes, start: int) -> bool:
    # decimal 1..65535, 1..5 digits, no leading zero
    digits = len(data) - start
    if digits < 1:
        return False
    if digits > 5:
        return False
    if data[start] == 0x30:
        return False
    port = 0
    i = start
    while i < len(data):
        c: int = data[i]
        if c < 0x30:
            return False
        if c > 0x39:
            return False
        port = port * 10 + (c - 0x30)
        i += 1
    return port <= 65535


def valid_location(location: str) -> bool:
    # host[:port] or DNS SRV name: dot-separated labels of letters, digits,
    # '-' and '_' (1..63 bytes each, none empty), optional ':port'.
    # Total length 1..253 bytes. Non-ASCII bytes are rejected.
    data = to_bytes(location)
    size = len(data)
    if size < 1:
        return False
    if size > 253:
        return False
    label = 0
    i = 0
    while i < size:
        c: int = data[i]
        if c == 0x2e:           # '.'
            if label == 0:
                return False
            label = 0
        elif c == 0x3a:         # ':'
            if label == 0:
                return False
            return valid_port(data, i + 1)
        elif is_label_char(c):
            label += 1
            if label > 63:
                return False
        else:
            return False
        i += 1
    return label > 0


def valid_uuid(uuid: str) -> bool:
    # xxxxxxxx-xxxx-4xxx-[89abAB]xxx-xxxxxxxxxxxx
    data = to_bytes(uuid)
    if len(data) != 36:
        return False
    i = 0
    while i < 36:
        c: int = data[i]
        if i == 8 or i == 13 or i == 18 or i == 23:
            if c != 0x2d:
                return False
        elif i == 14:
            if c != 0x34:       # version nibble '4'
                return False
        elif i == 19:
            # variant nibble 8, 9, a, b (either case)
            if not is_variant(c):
                return False
        elif not is_hex_digit(c):
            return False
        i += 1
    return True


def is_variant(c: int) -> bool:
    if c == 0x38:
        return True
    if c == 0x39:
        return True
    if c == 0x61 or c == 0x41:
        return True
    if c == 0x62 or c == 0x42:
        return True
    return False


# ---------------------------------------------------------------------------
# Deployment and upgrade
# ---------------------------------------------------------------------------
@public
def _deploy(data: Any, update: bool):
    # Only helper calls here (neo3-boa miscompiles local re-assignment).
    if not update:
        store_owner()


def store_owner():
    storage.put_uint160(OWNER_KEY, runtime.script_container.sender)


@public(safe=True)
def owner() -> UInt160:
    return storage.get_uint160(OWNER_KEY)


@public
def update(nef_file: bytes, manifest: bytes, data: Any):
    if not runtime.check_witness(storage.get_uint160(OWNER_KEY)):
        abort('forbidden: only the contract owner may upgrade')
    ContractManagement.update(nef_file, manifest, data)


@public(safe=True)
def version() -> int:
    return 2


# ---------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------
@public
def deploy(provider: UInt160, location: str) -> bool:
    require_witness(provider, 'forbidden: the transaction is not signed by the provider')
    if not valid_location(location):
        abort('invalid location: expected host[:port] or a DNS SRV name')
    key = PROVIDER_PREFIX + provider
    if len(storage.get(key)) != 0:
        abort('provider already deployed')
    storage.put_str(key, location)
    on_provider_deployed(provider, location)
    return True


@public
def undeploy(provider: UInt160) -> bool:
    require_witness(provider, 'forbidden: the transaction is not signed by the provider')
    key = PROVIDER_PREFIX + provider
    if len(storage.get(key)) == 0:
        abort('provider not deployed')
    storage.delete(key)
    on_provider_undeployed(provider)
    return True


@public(safe=True)
def location(provider: UInt160) -> Optional[str]:
    require_hash160(provider)
    value = storage.get(PROVIDER_PREFIX + provider)
    if len(value) == 0:
        return None
    return to_str(value)


@public(safe=True)
def providers() -> list:
    # [[provider, location], ...] for every deployed provider, in key order.
    result: list = []
    it = storage.find(PROVIDER_PREFIX, options=FindOptions.REMOVE_PREFIX)
    while it.next():
        pair: tuple[bytes, bytes] = it.value
        result.append([pair[0], to_str(pair[1])])
    return result


# ---------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------
@public
def register(user: UInt160, provider: UInt160, uuid: str) -> bool:
    require_witness(user, 'forbidden: the transaction is not signed by the user')
    require_hash160(provider)
    if len(storage.get(PROVIDER_PREFIX + provider)) == 0:
        abort('provider not deployed')
    if not valid_uuid(uuid):
        abort('invalid uuid: expected an RFC 4122 version 4 UUID')
    # Re-registering replaces the previous provider and uuid.
    storage.put_uint160(USER_PROVIDER_PREFIX + user, provider)
    storage.put_str(USER_UUID_PREFIX + user, uuid)
    on_user_registered(user, provider, uuid)
    return True


@public
def unregister(user: UInt160) -> bool:
    require_witness(user, 'forbidden: the transaction is not signed by the user')
    key = USER_PROVIDER_PREFIX + user
    if len(storage.get(key)) == 0:
        abort('user not registered')
    storage.delete(key)
    storage.delete(USER_UUID_PREFIX + user)
    # The device key is independent of registration; clearDeviceKey removes it.
    on_user_unregistered(user)
    return True


@public
def setDeviceKey(user: UInt160, key: ECPoint) -> bool:
    require_witness(user, 'forbidden: the transaction is not signed by the user')
    if not valid_compressed_key(key):
        abort('invalid device key: expected a 33-byte compressed public key')
    storage.put_ecpoint(USER_KEY_PREFIX + user, key)
    on_device_key_changed(user, key)
    return True


def valid_compressed_key(key: ECPoint) -> bool:
    if len(key) != 33:
        return False
    if key[0] == 0x02:
        return True
    if key[0] == 0x03:
        return True
    return False


@public
def clearDeviceKey(user: UInt160) -> bool:
    require_witness(user, 'forbidden: the transaction is not signed by the user')
    key = USER_KEY_PREFIX + user
    if len(storage.get(key)) == 0:
        abort('device key not set')
    storage.delete(key)
    on_device_key_changed(user, None)
    return True


@public(safe=True)
def query(type: str, user: UInt160) -> Any:
    # 'uuid' | 'provider' | 'location' | 'key'; null when absent.
    require_hash160(user)
    if type == 'uuid':
        return get_or_none(USER_UUID_PREFIX + user, True)
    if type == 'provider':
        return get_or_none(USER_PROVIDER_PREFIX + user, False)
    if type == 'key':
        return get_or_none(USER_KEY_PREFIX + user, False)
    if type == 'location':
        provider = storage.get(USER_PROVIDER_PREFIX + user)
        if len(provider) == 0:
            return None
        return get_or_none(PROVIDER_PREFIX + provider, True)
    abort('unknown query type')
    return None  # unreachable; neo3-boa requires a return


def get_or_none(key: bytes, as_str: bool) -> Any:
    value = storage.get(key)
    if len(value) == 0:
        return None
    if as_str:
        return to_str(value)
    return value
