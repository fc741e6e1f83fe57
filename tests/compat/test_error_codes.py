"""Every error code drover can answer with is declared once, in the `codes!`
list of src/api/error.rs. Each must be one the official SDKs know (TAT's or
CAM's errorcodes.py), one of Tencent Cloud API 3.0's common codes, or a
drover extension named below with its reason, so an SDK user never meets a
code nobody documents. Reads the source and the installed SDK; starts no
server."""

import re
from pathlib import Path

import tencentcloud.cam.v20190116.errorcodes as cam_codes
import tencentcloud.tat.v20201028.errorcodes as tat_codes

REPO = Path(__file__).resolve().parents[2]

# API 3.0's common error codes (returned by any product's endpoint; they
# are not in a product's errorcodes.py).
COMMON = {
    "AuthFailure.InvalidAuthorization",
    "AuthFailure.SecretIdNotFound",
    "AuthFailure.SignatureExpire",
    "AuthFailure.SignatureFailure",
    "InvalidAction",
    "NoSuchVersion",
    "RequestSizeLimitExceeded",
    "UnsupportedProtocol",
    "UnsupportedRegion",
}

# drover's own codes, for what TAT and CAM do not have (README).
EXTENSIONS = {
    # The web console's sign-in and session.
    "AuthFailure.LoginFailed",
    "AuthFailure.LoginLocked",
    "AuthFailure.PasswordResetRequired",
    "AuthFailure.SessionExpired",
    # ClientToken on RunCommand / InvokeCommand / CreateInvoker.
    "InvalidParameter.IdempotentParameterMismatch",
    "InvalidParameterValue.InvalidClientToken",
    # Secrets.
    "InvalidParameterValue.InvalidSecretName",
    "InvalidParameterValue.InvalidSecretValue",
    "InvalidParameterValue.SecretNameDuplicated",
    "InvalidParameterValue.SecretUnsupportedCommandType",
    "LimitExceeded.SecretQuota",
    "ResourceNotFound.SecretNotFound",
    # Webhooks.
    "InvalidParameterValue.InvalidWebhookSecret",
    "InvalidParameterValue.InvalidWebhookUrl",
    # Targets selectors.
    "InvalidParameterValue.NoInstanceMatched",
    # Azure-style role assignments.
    "ResourceNotFound.RoleAssignmentNotFound",
    # Suspend / resume.
    "UnsupportedOperation.AgentJobControlUnsupported",
    "UnsupportedOperation.TaskNotRunning",
    "UnsupportedOperation.TaskNotSuspended",
    # Interactive sessions and their recordings.
    "FailedOperation.SessionClosed",
    "FailedOperation.SessionStartFailed",
    "InvalidParameterValue.InvalidSessionId",
    "LimitExceeded.Session",
    "ResourceNotFound.SessionNotFound",
    "ResourceUnavailable.RecordingTooLarge",
    "UnsupportedOperation.AgentSessionUnsupported",
    # Ssh public keys of the ssh gateway (ImportSshPublicKey ...).
    "InvalidParameterValue.InvalidSshPublicKey",
    "InvalidParameterValue.SshPublicKeyDuplicated",
    "LimitExceeded.SshPublicKeyQuota",
    "ResourceNotFound.SshPublicKeyNotFound",
    # An invoker trigger that was already handled (the scheduler's; an
    # API caller never sees it).
    "FailedOperation.InvokerTriggerHandled",
    # Interactive sessions (the console's terminal socket, the ssh gateway),
    # their recordings and TerminateSession.
    "InvalidParameterValue.InvalidSessionId",
    "ResourceNotFound.SessionNotFound",
    "ResourceUnavailable.RecordingTooLarge",
    "UnsupportedOperation.AgentSessionUnsupported",
    "LimitExceeded.Session",
    "FailedOperation.SessionStartFailed",
    "FailedOperation.SessionClosed",
}


def sdk_codes():
    out = set()
    for mod in (tat_codes, cam_codes):
        out |= {v for k, v in vars(mod).items() if k.isupper() and isinstance(v, str)}
    return out


def declared():
    text = (REPO / "src" / "api" / "error.rs").read_text()
    block = text[text.index("codes! {"):]
    block = block[:block.index("\n}")]
    return re.findall(r'^\s*(\w+) = "([^"]+)",$', block, re.M)


def test_every_declared_code_is_documented_once():
    pairs = declared()
    assert len(pairs) > 100, "the codes! list was not found"
    wire = [w for _, w in pairs]
    assert len(wire) == len(set(wire)), "a code is declared twice"
    sdk = sdk_codes()
    unknown = sorted(w for w in wire if w not in sdk and w not in COMMON and w not in EXTENSIONS)
    assert not unknown, "codes neither in the SDKs, common, nor named extensions: %s" % unknown
    # An extension the SDK has meanwhile documented belongs to the SDK's set.
    assert not (EXTENSIONS & sdk), sorted(EXTENSIONS & sdk)
    # Nothing stale: each listed extension is still declared.
    assert not (EXTENSIONS - set(wire)), sorted(EXTENSIONS - set(wire))


def test_no_code_string_outside_the_list():
    """Handlers name `Code` variants; a wire string anywhere else in src/
    would be a second declaration."""
    wire = {w for _, w in declared()}
    pattern = re.compile(r'"([A-Z][A-Za-z]+(?:\.[A-Z][A-Za-z]+)?)"')
    strays = []
    for path in (REPO / "src").rglob("*.rs"):
        if path == REPO / "src" / "api" / "error.rs":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in pattern.findall(line):
                if m in wire:
                    strays.append("%s:%d %s" % (path.relative_to(REPO), n, m))
    assert not strays, strays
