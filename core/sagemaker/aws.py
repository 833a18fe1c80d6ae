"""boto3 sessions and clients for the SageMaker backend, and AWS errors turned into one sentence.

The standard AWS configuration is honoured, as the AWS CLI v2 reads it: the region from AWS_REGION, then
AWS_DEFAULT_REGION, then the profile (boto3 itself reads only the last two); profiles; AWS_ENDPOINT_URL and
AWS_ENDPOINT_URL_<SERVICE>; AWS_MAX_ATTEMPTS and AWS_RETRY_MODE (or max_attempts / retry_mode in the profile);
credential chains. We never set an endpoint, and set retries only where the user set none.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from core.errors import NotFound, UserError, one_line

# Without a setting of the user's: standard retry mode (botocore's default, exponential backoff with jitter
# on throttling and transient errors) with 8 attempts in all instead of its 3, since a live view polls.
DEFAULT_TOTAL_ATTEMPTS = 8
REGION_SOURCES = (
    "region in the [sagemaker] section of the config file, HOUSING_TUI_REGION, --region, AWS_REGION, "
    "AWS_DEFAULT_REGION, or region in the AWS profile (~/.aws/config)"
)
NOT_FOUND_CODES = {"ResourceNotFound", "ValidationException", "NoSuchKey", "NoSuchBucket", "NoSuchEntity", "404"}


@dataclass
class Clients:
    """The clients the backend uses.

    `sagemaker_extra` serves the operations moto does not implement (ListPipelineExecutionSteps,
    StopPipelineExecution, UpdateEndpoint). In use it is the very same client as `sagemaker`; tests give it
    a botocore Stubber of its own.
    """

    session: Any
    sagemaker: Any
    sagemaker_extra: Any
    runtime: Any
    s3: Any
    logs: Any
    sts: Any

    # Independent calls for many records (each new run's parameters, each changed version) go side by side
    # on this many threads; 1 makes them one after another, in order (the fuzz tests draw answers in order).
    workers: int = 8

    @property
    def region(self) -> str:
        return self.session.region_name

    def each(self, call: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """call(item) for every item, side by side on `workers` threads."""
        items = list(items)
        if self.workers <= 1 or len(items) <= 1:
            return [call(item) for item in items]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(call, items))


def make_session(region: str | None, profile: str | None = None) -> Any:
    import boto3
    import botocore.exceptions

    # AWS_REGION first, as the AWS CLI v2 and the other SDKs read it; boto3 goes on to AWS_DEFAULT_REGION
    # and the profile by itself.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        session = boto3.Session(region_name=region, profile_name=profile)
    except botocore.exceptions.ProfileNotFound as exc:
        raise UserError(
            f"AWS profile {exc.kwargs.get('profile')!r} is not in ~/.aws/config; check AWS_PROFILE or --profile"
        ) from None
    if not session.region_name:
        raise UserError(f"no AWS region: set one of {REGION_SOURCES}")
    if session.region_name not in set(session.get_available_regions("sagemaker")) | set(
        session.get_available_regions("sagemaker", partition_name="aws-cn")
    ) | set(session.get_available_regions("sagemaker", partition_name="aws-us-gov")):
        raise UserError(f"region {session.region_name!r} does not offer SageMaker; choose a region that does")
    return session


def retry_config(session: Any) -> dict[str, Any]:
    """Our attempt count unless the user set one (AWS_MAX_ATTEMPTS or the profile's max_attempts).

    The mode is left to botocore, which reads AWS_RETRY_MODE and the profile and defaults to standard."""
    if session._session.get_config_variable("max_attempts") is not None:
        return {}
    return {"total_max_attempts": DEFAULT_TOTAL_ATTEMPTS}


def make_clients(session: Any) -> Clients:
    from botocore.config import Config

    config = Config(retries=retry_config(session), user_agent_extra="housing-tui")
    sagemaker = session.client("sagemaker", config=config)
    return Clients(
        session=session,
        sagemaker=sagemaker,
        sagemaker_extra=sagemaker,
        runtime=session.client("sagemaker-runtime", config=config),
        s3=session.client("s3", config=config),
        logs=session.client("logs", config=config),
        sts=session.client("sts", config=config),
    )


def _says_missing(message: str) -> bool:
    # SageMaker answers a missing resource with a ValidationException; only its message tells.
    text = message.lower()
    return any(words in text for words in ("not exist", "not found", "could not find", "cannot find"))


# The services the backend calls, searched in this order for the one an operation belongs to.
SERVICES = ("s3", "logs", "sagemaker-runtime", "sts", "sagemaker")
MESSAGE_LIMIT = 160  # what AWS said, quoted inside our sentence


@functools.cache
def _service_models() -> Any:
    import botocore.session

    return botocore.session.get_session()  # loads each service's model once, on the first error that needs it


@functools.cache
def service_of(operation: str, declared: str) -> str:
    """The IAM prefix of the service `operation` belongs to. A block declared "sagemaker" may make S3 calls
    (the SDK uploads code while it builds the pipeline): their errors must name s3, or the fix is wrong."""
    from botocore.exceptions import UnknownServiceError

    for name in dict.fromkeys((declared, *SERVICES)):
        try:
            model = _service_models().get_service_model(name)
        except UnknownServiceError:
            continue
        if operation in model.operation_names:
            return model.signing_name  # sagemaker-runtime's InvokeEndpoint is sagemaker:InvokeEndpoint in IAM
    return declared


def _action(error: Any, service: str) -> str:
    operation = getattr(error, "operation_name", None)
    if not operation:
        return f"{service}:the request"
    return f"{service_of(operation, service)}:{operation}"


def _fail(kind: type[UserError], message: str, code: str) -> UserError:
    error = kind(message)
    error.code = code
    return error


@contextmanager
def aws_errors(service: str = "sagemaker", who: str | None = None, missing: str | None = None) -> Iterator[None]:
    """Turn boto errors into UserError sentences; `missing` is the sentence for a not-found error."""
    import botocore.exceptions as bx

    try:
        yield
    except bx.NoCredentialsError:
        raise UserError(
            "no AWS credentials found: configure a profile (aws configure), AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError) as exc:
        raise UserError(
            f"cannot reach {service} ({one_line(str(exc), MESSAGE_LIMIT)}); check the region and the network "
            "(or AWS_ENDPOINT_URL)"
        ) from None
    except bx.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        said = str(error.get("Message", "")).strip().rstrip(".")
        message = one_line(said, MESSAGE_LIMIT)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        # A code that is only the HTTP status (an error page from a proxy or a stand-in) is no name to show.
        named = code if code and not code.isdigit() else None
        label = named or f"HTTP {status or code or 'error'}"
        action = _action(exc, service)
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"):
            subject = f" for {who}" if who else ""
            raise _fail(
                UserError, f"AccessDenied on {action}{subject}: add {action} to its IAM policy", label
            ) from None
        if code in ("ThrottlingException", "Throttling", "TooManyRequestsException", "SlowDown"):
            raise _fail(
                UserError, f"AWS is throttling {action} even after retries; wait a minute and try again", label
            ) from None
        if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
            raise _fail(
                UserError, f"the AWS credentials were refused ({code}): refresh them and try again", label
            ) from None
        if missing and code in NOT_FOUND_CODES and (code != "ValidationException" or _says_missing(message)):
            raise _fail(NotFound, missing, label) from None
        if message and message == " ".join(said.split()):
            raise _fail(UserError, f"{action} failed: {message}", label) from None
        # An error page or a message of pages: the status, the code if there is one, and the gist in one line.
        gist = f": {message}" if message else "; try again, and check the settings with `housing-tui doctor`"
        raise _fail(
            UserError, f"{action} failed with HTTP {status or '?'}{f' ({named})' if named else ''}{gist}", label
        ) from None
    except bx.BotoCoreError as exc:
        # E.g. a paginator handed the same token twice, an answer that could not be parsed, a read timeout.
        raise UserError(
            f"a {service} call did not complete ({one_line(str(exc), MESSAGE_LIMIT)}); try again in a minute"
        ) from None
