"""Azure SDK exceptions -> one-line PublishError with a hint; matched by exception type and service error code."""

from __future__ import annotations

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from harness.errors import PublishError
from harness.log import mask_secrets

# Service error codes (ARM `error.code`, storage `x-ms-error-code`) -> what to do about them.
CODE_HINTS: dict[str, str] = {
    "AuthorizationFailed": "the identity lacks a role assignment: grant it Contributor on the resource group "
                           "(az role assignment create --role Contributor --scope <resource group id>)",
    "AuthorizationPermissionMismatch": "the identity lacks a data role on the storage account: grant it "
                                       "'Storage Blob Data Contributor'",
    "AuthorizationFailure": "the storage account refused the request: check its firewall and the identity's "
                            "'Storage Blob Data Contributor' role",
    "AuthenticationFailed": "the storage credential is wrong or expired: check the connection string or SAS",
    "LinkedAuthorizationFailed": "the identity may not read the storage account the source blob lives in: "
                                 "grant it Reader on that account",
    "PrincipalNotFound": "the principal is not (yet) known to the directory: check the object id, or give "
                         "--principal-type so Azure does not wait for a just-created principal to replicate",
    "InvalidPrincipalId": "give the principal's object id (a GUID), not its name or application id",
    "RoleDefinitionDoesNotExist": "no such role: use a built-in role name such as Reader, or a role definition GUID",
    "InvalidApiVersionParameter": "the endpoint does not accept this api-version: upgrade azure-mgmt-compute, or "
                                  "check --arm-endpoint points at Azure Resource Manager",
    "NoRegisteredProviderFound": "the region or api-version is not available for this resource type: check "
                                 "--location and the installed azure-mgmt-compute",
    "LocationNotAvailableForResourceType": "wrong region: pick a region that offers Compute galleries (--location)",
    "InvalidLocation": "wrong region name: use the short form, e.g. westeurope (az account list-locations)",
    "ResourceGroupNotFound": "create the resource group first (az group create) or fix --resource-group",
    "SubscriptionNotFound": "fix --subscription (az account list)",
    "MissingSubscriptionRegistration": "register the provider: az provider register -n Microsoft.Compute",
    "ContainerNotFound": "the container does not exist and could not be created: check --container",
    "InvalidBlobOrBlock": "the VHD is not acceptable: run 'harness vhd validate' on it",
    "RequestBodyTooLarge": "a Put Page body exceeded 4 MiB: this is a harness bug, please report it",
    "OperationNotAllowed": "the operation is not allowed in this state: a disk must have its access revoked "
                           "before use, and image versions are immutable",
}

GENERATION_HINT = ("hyperVGeneration mismatch: an image version must match its image definition's generation; "
                   "publish the V1 build to a V1 definition and the V2 build to a V2 definition")


def error_code(exc: AzureError) -> str:
    """The service's error code (ARM body `error.code` or storage `x-ms-error-code`), '' if none."""
    code = getattr(exc, "error_code", None) or getattr(getattr(exc, "error", None), "code", None)
    code = getattr(code, "value", code)  # storage codes are StorageErrorCode enums
    return str(code) if code else ""


def _first_line(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    text = str(getattr(error, "message", "") or getattr(exc, "message", "") or exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # Storage errors repeat "RequestId:..." and "Time:..." lines; the first line carries the meaning.
    return lines[0] if lines else type(exc).__name__


# By exception type, most specific first; used when the service gave no code with a hint of its own.
TYPE_HINTS: tuple[tuple[type[AzureError], str], ...] = (
    (ClientAuthenticationError, "sign in with 'az login', or set AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, "
                                "or use a managed identity (DefaultAzureCredential)"),
    (ResourceNotFoundError, "check the subscription, resource group, gallery and region names"),
    (ResourceExistsError, "the resource exists with other settings; pick another name or version"),
    (ServiceRequestError, "the endpoint could not be reached: check the network, proxy settings and the endpoint URL"),
    (ServiceResponseError, "the connection broke during the request: retry; a proxy or firewall may cut long "
                           "uploads"),
)


def _hint(exc: AzureError, code: str, message: str) -> str:
    if code in CODE_HINTS:
        return CODE_HINTS[code]
    if "hypervgeneration" in message.lower().replace(" ", ""):
        return GENERATION_HINT
    for kind, hint in TYPE_HINTS:
        if isinstance(exc, kind):
            return hint
    if isinstance(exc, HttpResponseError) and exc.status_code == 403:
        return CODE_HINTS["AuthorizationFailed"]
    return "rerun with --debug for the full response"


def publish_error(what: str, exc: AzureError) -> PublishError:
    """One-line PublishError for a failed Azure call: what failed, status/code, the service's message, a hint."""
    code = error_code(exc)
    status = getattr(exc, "status_code", None)
    message = _first_line(exc)
    where = " ".join(x for x in (f"HTTP {status}" if status else "", code) if x)
    text = f"{what} failed: {where + ': ' if where else ''}{message}"
    return PublishError(mask_secrets(text), mask_secrets(_hint(exc, code, message)))
