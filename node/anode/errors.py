"""The one table of errors the node answers with, and the neutral refusal its services raise.

`ErrorCode` names S3's codes (AWS S3 API reference, "Error responses") with their HTTP status;
the admin API answers the same codes as JSON. Services below the HTTP ports (`node`, `space`,
`kms`, the state machine's rejections) raise `Refused`; each port translates it into its own
shape: `s3/errors.py` (`S3Error`, an XML document) and `admin/common.py` (JSON). Leaf: imports
nothing of Anode.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    """S3 error codes (AWS S3 API reference, "Error responses"): (status, default message)."""

    AccessDenied = (403, "Access Denied")
    AccountProblem = (403, "There is a problem with your AWS account.")
    AuthorizationHeaderMalformed = (400, "The authorization header is malformed.")
    AuthorizationQueryParametersError = (400, "Error parsing the X-Amz-Credential parameter.")
    BadDigest = (400, "The Content-MD5 you specified did not match what we received.")
    BucketAlreadyExists = (409, "The requested bucket name is not available.")
    BucketAlreadyOwnedByYou = (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    )
    BucketNotEmpty = (409, "The bucket you tried to delete is not empty.")
    EntityTooLarge = (400, "Your proposed upload exceeds the maximum allowed object size.")
    EntityTooSmall = (400, "Your proposed upload is smaller than the minimum allowed object size.")
    ExpiredToken = (400, "The provided token has expired.")
    IncompleteBody = (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    )
    InsufficientStorage = (507, "The node has no space left to store this request.")
    InternalError = (500, "We encountered an internal error. Please try again.")
    InvalidAccessKeyId = (403, "The AWS access key ID you provided does not exist in our records.")
    InvalidArgument = (400, "Invalid Argument")
    InvalidBucketName = (400, "The specified bucket is not valid.")
    InvalidDigest = (400, "The Content-MD5 you specified is not valid.")
    InvalidPart = (
        400,
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    )
    InvalidPartOrder = (
        400,
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
    )
    InvalidPartNumber = (416, "The requested partnumber is not satisfiable")
    InvalidRange = (416, "The requested range is not satisfiable")
    InvalidRequest = (400, "Invalid Request")
    InvalidLocationConstraint = (400, "The specified location constraint is not valid.")
    NoSuchUser = (404, "The specified user does not exist.")
    # Anode's bucket quota (admin API); MinIO answers XMinioAdminBucketQuotaExceeded
    QuotaExceeded = (403, "The bucket quota would be exceeded by this write.")
    UserExists = (409, "The user or access key already exists.")
    InvalidStorageClass = (400, "The storage class you specified is not valid.")
    KeyTooLongError = (400, "Your key is too long.")
    MalformedXML = (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema.",
    )
    MetadataTooLarge = (400, "Your metadata headers exceed the maximum allowed metadata size.")
    MethodNotAllowed = (405, "The specified method is not allowed against this resource.")
    MissingContentLength = (411, "You must provide the Content-Length HTTP header.")
    MissingSecurityHeader = (400, "Your request is missing a required header.")
    NoSuchBucket = (404, "The specified bucket does not exist.")
    NoSuchKey = (404, "The specified key does not exist.")
    NoSuchVersion = (
        404,
        "The specified version does not exist.",
    )
    NoSuchTagSet = (404, "The TagSet does not exist")
    InvalidTag = (400, "The tag provided was not a valid tag.")
    NoSuchUpload = (
        404,
        "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.",
    )
    NotImplemented = (
        501,
        "A header or query you provided implies functionality that is not implemented.",
    )
    NotModified = (304, "Not Modified")
    PreconditionFailed = (412, "At least one of the preconditions you specified did not hold.")
    ConditionalRequestConflict = (
        409,
        "A conflicting operation occurred. If using PutObject you can retry the request.",
    )
    OperationAborted = (
        409,
        "A conflicting conditional operation is currently in progress against this resource. "
        "Try again.",
    )
    RequestHeaderSectionTooLarge = (
        400,
        "Your request header section exceeds the maximum allowed size.",
    )
    RequestTimeTooSkewed = (
        403,
        "The difference between the request time and the server's time is too large.",
    )
    RequestTimeout = (
        400,
        "Your socket connection to the server was not read from or written to within the timeout period.",
    )
    ServiceUnavailable = (503, "Service is unable to handle request.")
    SignatureDoesNotMatch = (
        403,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
    SlowDown = (503, "Please reduce your request rate.")
    XAmzContentSHA256Mismatch = (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
    InvalidChunkSizeError = (
        400,
        "Only the last chunk is allowed to have a size less than 8192 bytes",
    )
    # access control and CORS
    AccessControlListNotSupported = (400, "The bucket does not allow ACLs")
    CORSResponse = (
        403,
        "This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
    )
    InvalidBucketAclWithObjectOwnership = (
        400,
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
    )
    MalformedACLError = (  # not MalformedXML's exact message: equal values would alias it
        400,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
    MalformedPolicy = (400, "Policy has invalid resource")
    NoSuchBucketPolicy = (404, "The bucket policy does not exist")
    NoSuchCORSConfiguration = (404, "The CORS configuration does not exist")
    NoSuchPublicAccessBlockConfiguration = (
        404,
        "The public access block configuration was not found",
    )
    OwnershipControlsNotFoundError = (404, "The bucket ownership controls were not found")
    # lifecycle, POST uploads and bucket sub-resources nothing configures
    NoSuchLifecycleConfiguration = (404, "The lifecycle configuration does not exist")
    NoSuchWebsiteConfiguration = (404, "The specified bucket does not have a website configuration")
    ReplicationConfigurationNotFoundError = (404, "The replication configuration was not found")
    IncorrectNumberOfFilesInPostRequest = (
        400,
        "POST requires exactly one file upload per request.",
    )
    InvalidPolicyDocument = (400, "Invalid Policy: Invalid JSON.")
    MaxPostPreDataLengthExceededError = (
        400,
        "Your POST request fields preceeding the upload file was too large.",
    )
    MalformedPOSTRequest = (
        400,
        "The body of your POST request is not well-formed multipart/form-data.",
    )
    UnresolvableGrantByEmailAddress = (
        400,
        "The email address you provided does not match any account on record.",
    )
    UnexpectedContent = (400, "This request does not support content.")
    # object lock and encryption
    InvalidBucketState = (409, "The request is not valid with the current state of the bucket.")
    NoSuchObjectLockConfiguration = (
        404,
        "The specified object does not have a ObjectLock configuration",
    )
    ObjectLockConfigurationNotFoundError = (
        404,
        "Object Lock configuration does not exist for this bucket",
    )
    ServerSideEncryptionConfigurationNotFoundError = (
        404,
        "The server side encryption configuration was not found",
    )
    InvalidEncryptionAlgorithmError = (
        400,
        "The encryption request you specified is not valid. The valid value is AES256.",
    )
    BadRequest = (400, "Bad Request")
    # SSE-KMS (AWS answers these S3 requests with KMS's own codes, prefixed "KMS.")
    KMS_NotFoundException = (400, "Invalid keyId")
    KMS_DisabledException = (400, "The KMS key is disabled")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def aws_name(self) -> str:
        """The code as S3 writes it (`KMS.NotFoundException` for `KMS_NotFoundException`)."""
        return self.name.replace("KMS_", "KMS.", 1)

    @property
    def default_message(self) -> str:
        return self.value[1]


class Refused(Exception):
    """A request refused with one of the table's codes, in no API's shape yet."""

    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or code.default_message)
        self.code = code
        self.message = message or code.default_message

    @property
    def status(self) -> int:
        return self.code.status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.message!r})"
