namespace Peerway.Nat.Stun;

/// <summary>RFC 8489 §5: the two class bits of the message type.</summary>
public enum StunClass : byte
{
    Request = 0b00,
    Indication = 0b01,
    SuccessResponse = 0b10,
    ErrorResponse = 0b11,
}

/// <summary>STUN methods (RFC 8489 §18.2, RFC 8656 §17).</summary>
public enum StunMethod : ushort
{
    Binding = 0x001,
    Allocate = 0x003,
    Refresh = 0x004,
    Send = 0x006,
    Data = 0x007,
    CreatePermission = 0x008,
    ChannelBind = 0x009,
}

/// <summary>STUN attribute types (RFC 8489 §18.3, RFC 8656 §18, RFC 5780 §7, RFC 8445 §16.1).</summary>
public static class StunAttributeType
{
    // Comprehension-required range 0x0000-0x7FFF.
    public const ushort MappedAddress = 0x0001;
    public const ushort ChangeRequest = 0x0003;
    public const ushort Username = 0x0006;
    public const ushort MessageIntegrity = 0x0008;
    public const ushort ErrorCode = 0x0009;
    public const ushort UnknownAttributes = 0x000A;
    public const ushort ChannelNumber = 0x000C;
    public const ushort Lifetime = 0x000D;
    public const ushort XorPeerAddress = 0x0012;
    public const ushort Data = 0x0013;
    public const ushort Realm = 0x0014;
    public const ushort Nonce = 0x0015;
    public const ushort XorRelayedAddress = 0x0016;
    public const ushort RequestedAddressFamily = 0x0017;
    public const ushort EvenPort = 0x0018;
    public const ushort RequestedTransport = 0x0019;
    public const ushort DontFragment = 0x001A;
    public const ushort MessageIntegritySha256 = 0x001C;
    public const ushort PasswordAlgorithm = 0x001D;
    public const ushort UserHash = 0x001E;
    public const ushort XorMappedAddress = 0x0020;
    public const ushort ReservationToken = 0x0022;
    public const ushort Priority = 0x0024;
    public const ushort UseCandidate = 0x0025;
    public const ushort Padding = 0x0026;
    public const ushort ResponsePort = 0x0027;

    // Comprehension-optional range 0x8000-0xFFFF.
    public const ushort AdditionalAddressFamily = 0x8000;
    public const ushort AddressErrorCode = 0x8001;
    public const ushort PasswordAlgorithms = 0x8002;
    public const ushort AlternateDomain = 0x8003;
    public const ushort Icmp = 0x8004;
    public const ushort Software = 0x8022;
    public const ushort AlternateServer = 0x8023;
    public const ushort Fingerprint = 0x8028;
    public const ushort IceControlled = 0x8029;
    public const ushort IceControlling = 0x802A;
    public const ushort ResponseOrigin = 0x802B;
    public const ushort OtherAddress = 0x802C;

    /// <summary>RFC 8489 §14: types below 0x8000 must be understood or the request is rejected with 420.</summary>
    public static bool IsComprehensionRequired(ushort type) => type < 0x8000;
}

/// <summary>Error codes used by STUN and TURN (RFC 8489 §14.8, RFC 8656 §19).</summary>
public static class StunErrorCode
{
    public const int TryAlternate = 300;
    public const int BadRequest = 400;
    public const int Unauthenticated = 401;
    public const int Forbidden = 403;
    public const int UnknownAttribute = 420;
    public const int AllocationMismatch = 437;
    public const int StaleNonce = 438;
    public const int AddressFamilyNotSupported = 440;
    public const int WrongCredentials = 441;
    public const int UnsupportedTransportProtocol = 442;
    public const int PeerAddressFamilyMismatch = 443;
    public const int AllocationQuotaReached = 486;
    public const int RoleConflict = 487;
    public const int ServerError = 500;
    public const int InsufficientCapacity = 508;

    public static string DefaultReason(int code) => code switch
    {
        TryAlternate => "Try Alternate",
        BadRequest => "Bad Request",
        Unauthenticated => "Unauthenticated",
        Forbidden => "Forbidden",
        UnknownAttribute => "Unknown Attribute",
        AllocationMismatch => "Allocation Mismatch",
        StaleNonce => "Stale Nonce",
        AddressFamilyNotSupported => "Address Family not Supported",
        WrongCredentials => "Wrong Credentials",
        UnsupportedTransportProtocol => "Unsupported Transport Protocol",
        PeerAddressFamilyMismatch => "Peer Address Family Mismatch",
        AllocationQuotaReached => "Allocation Quota Reached",
        RoleConflict => "Role Conflict",
        ServerError => "Server Error",
        InsufficientCapacity => "Insufficient Capacity",
        _ => "Error",
    };
}

/// <summary>Wire constants and bounds (RFC 8489).</summary>
public static class StunLimits
{
    /// <summary>RFC 8489 §5: the fixed value of bytes 4-7.</summary>
    public const uint MagicCookie = 0x2112A442;

    /// <summary>RFC 8489 §5: 20-byte header.</summary>
    public const int HeaderSize = 20;

    /// <summary>RFC 8489 §5: 96-bit transaction id.</summary>
    public const int TransactionIdSize = 12;

    /// <summary>RFC 8489 §5: the 16-bit length field bounds a message to 20 + 65,532 bytes (length is a multiple of 4).</summary>
    public const int MaxMessageSize = HeaderSize + 65_532;

    /// <summary>Bound on attributes per message; real messages carry about a dozen.</summary>
    public const int MaxAttributes = 64;

    /// <summary>RFC 8489 §14.3: USERNAME is less than 509 bytes.</summary>
    public const int MaxUsernameBytes = 508;

    /// <summary>RFC 8489 §14.9: REALM is less than 128 characters (763 bytes).</summary>
    public const int MaxRealmBytes = 763;

    /// <summary>RFC 8489 §14.10: NONCE is less than 128 characters (763 bytes).</summary>
    public const int MaxNonceBytes = 763;

    /// <summary>RFC 8489 §14.8: the reason phrase is less than 128 characters (763 bytes).</summary>
    public const int MaxReasonBytes = 763;

    /// <summary>RFC 8489 §14.7: FINGERPRINT is the CRC-32 XOR-ed with 0x5354554e.</summary>
    public const uint FingerprintXor = 0x5354554E;

    /// <summary>RFC 8489 §14.5: HMAC-SHA1, 20 bytes.</summary>
    public const int MessageIntegritySize = 20;

    /// <summary>RFC 8489 §14.6: HMAC-SHA256, truncated to at least 16 bytes, a multiple of 4, at most 32.</summary>
    public const int MessageIntegritySha256MinSize = 16;

    public const int MessageIntegritySha256Size = 32;
}
