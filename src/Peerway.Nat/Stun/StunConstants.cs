namespace Peerway.Nat.Stun;

/// <summary>RFC 8489 §5: the two class bits of the message type.</summary>
public enum StunClass : byte
{
    /// <summary>A request; the server answers with a success or error response.</summary>
    Request = 0b00,

    /// <summary>An indication; no response is expected.</summary>
    Indication = 0b01,

    /// <summary>A success response to a request.</summary>
    SuccessResponse = 0b10,

    /// <summary>An error response to a request; it carries ERROR-CODE.</summary>
    ErrorResponse = 0b11,
}

/// <summary>STUN methods (RFC 8489 §18.2, RFC 8656 §17).</summary>
public enum StunMethod : ushort
{
    /// <summary>Binding (RFC 8489 §3): learns the reflexive transport address; also the ICE connectivity check (RFC 8445 §7).</summary>
    Binding = 0x001,

    /// <summary>TURN Allocate (RFC 8656 §7): creates a relayed transport address.</summary>
    Allocate = 0x003,

    /// <summary>TURN Refresh (RFC 8656 §8): extends an allocation's lifetime, or deletes it with a lifetime of 0.</summary>
    Refresh = 0x004,

    /// <summary>TURN Send indication (RFC 8656 §11): data from the client to a peer through the relay.</summary>
    Send = 0x006,

    /// <summary>TURN Data indication (RFC 8656 §11): data from a peer to the client through the relay.</summary>
    Data = 0x007,

    /// <summary>TURN CreatePermission (RFC 8656 §9): lets a peer's IP address send to the relayed address.</summary>
    CreatePermission = 0x008,

    /// <summary>TURN ChannelBind (RFC 8656 §12): binds a channel number to a peer for ChannelData messages.</summary>
    ChannelBind = 0x009,
}

/// <summary>STUN attribute types (RFC 8489 §18.3, RFC 8656 §18, RFC 5780 §7, RFC 8445 §16.1).</summary>
public static class StunAttributeType
{
    // Comprehension-required range 0x0000-0x7FFF.
    /// <summary>MAPPED-ADDRESS (RFC 8489 §14.1): the reflexive address, not XOR-ed (RFC 3489 servers).</summary>
    public const ushort MappedAddress = 0x0001;

    /// <summary>CHANGE-REQUEST (RFC 5780 §7.2): asks the server to answer from its other IP (0x04) and/or port (0x02).</summary>
    public const ushort ChangeRequest = 0x0003;

    /// <summary>USERNAME (RFC 8489 §14.3): the user name of the credentials, at most 508 bytes.</summary>
    public const ushort Username = 0x0006;

    /// <summary>MESSAGE-INTEGRITY (RFC 8489 §14.5): HMAC-SHA1 over the message, 20 bytes.</summary>
    public const ushort MessageIntegrity = 0x0008;

    /// <summary>ERROR-CODE (RFC 8489 §14.8): the error code (300-699) and a UTF-8 reason phrase.</summary>
    public const ushort ErrorCode = 0x0009;

    /// <summary>UNKNOWN-ATTRIBUTES (RFC 8489 §14.9): the comprehension-required types a 420 response did not understand.</summary>
    public const ushort UnknownAttributes = 0x000A;

    /// <summary>CHANNEL-NUMBER (RFC 8656 §18.1): the channel of a ChannelBind request.</summary>
    public const ushort ChannelNumber = 0x000C;

    /// <summary>LIFETIME (RFC 8656 §18.2): an allocation's remaining lifetime, in seconds.</summary>
    public const ushort Lifetime = 0x000D;

    /// <summary>XOR-PEER-ADDRESS (RFC 8656 §18.3): a peer's address as seen from the relay, XOR-ed like XOR-MAPPED-ADDRESS.</summary>
    public const ushort XorPeerAddress = 0x0012;

    /// <summary>DATA (RFC 8656 §18.4): the application data of a Send or Data indication.</summary>
    public const ushort Data = 0x0013;

    /// <summary>REALM (RFC 8489 §14.9): the realm of long-term credentials.</summary>
    public const ushort Realm = 0x0014;

    /// <summary>NONCE (RFC 8489 §14.10): the server's nonce for long-term credentials.</summary>
    public const ushort Nonce = 0x0015;

    /// <summary>XOR-RELAYED-ADDRESS (RFC 8656 §18.5): the relayed transport address the server allocated.</summary>
    public const ushort XorRelayedAddress = 0x0016;

    /// <summary>REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6): the address family (IPv4 or IPv6) of the relayed address asked for.</summary>
    public const ushort RequestedAddressFamily = 0x0017;

    /// <summary>EVEN-PORT (RFC 8656 §18.7): asks for an even relayed port, optionally reserving the next one.</summary>
    public const ushort EvenPort = 0x0018;

    /// <summary>REQUESTED-TRANSPORT (RFC 8656 §18.8): the relay's transport protocol (17, UDP).</summary>
    public const ushort RequestedTransport = 0x0019;

    /// <summary>DONT-FRAGMENT (RFC 8656 §18.9): asks the server to set DF on datagrams relayed to the peer.</summary>
    public const ushort DontFragment = 0x001A;

    /// <summary>MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6): HMAC-SHA256 over the message, 16 to 32 bytes.</summary>
    public const ushort MessageIntegritySha256 = 0x001C;

    /// <summary>PASSWORD-ALGORITHM (RFC 8489 §14.12): the algorithm the client chose to hash the long-term password.</summary>
    public const ushort PasswordAlgorithm = 0x001D;

    /// <summary>USERHASH (RFC 8489 §14.4): SHA-256 of the user name and realm, sent in place of USERNAME.</summary>
    public const ushort UserHash = 0x001E;

    /// <summary>XOR-MAPPED-ADDRESS (RFC 8489 §14.2): the reflexive address, XOR-ed with the magic cookie (and transaction id for IPv6).</summary>
    public const ushort XorMappedAddress = 0x0020;

    /// <summary>RESERVATION-TOKEN (RFC 8656 §18.10): names a relayed port reserved by an earlier EVEN-PORT allocation.</summary>
    public const ushort ReservationToken = 0x0022;

    /// <summary>PRIORITY (RFC 8445 §16.1): the priority a peer-reflexive candidate learnt from this check would have.</summary>
    public const ushort Priority = 0x0024;

    /// <summary>USE-CANDIDATE (RFC 8445 §16.1): the controlling agent nominates the pair of this check.</summary>
    public const ushort UseCandidate = 0x0025;

    /// <summary>PADDING (RFC 5780 §7.6): bytes that make a Binding request as large as the path MTU test needs.</summary>
    public const ushort Padding = 0x0026;

    /// <summary>RESPONSE-PORT (RFC 5780 §7.5): the port to which the server sends its response.</summary>
    public const ushort ResponsePort = 0x0027;

    // Comprehension-optional range 0x8000-0xFFFF.
    /// <summary>ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11): asks for an IPv6 relayed address besides the IPv4 one.</summary>
    public const ushort AdditionalAddressFamily = 0x8000;

    /// <summary>ADDRESS-ERROR-CODE (RFC 8656 §18.12): why the relayed address of one family was not allocated.</summary>
    public const ushort AddressErrorCode = 0x8001;

    /// <summary>PASSWORD-ALGORITHMS (RFC 8489 §14.11): the password algorithms the server supports.</summary>
    public const ushort PasswordAlgorithms = 0x8002;

    /// <summary>ALTERNATE-DOMAIN (RFC 8489 §14.16): the domain name of the server in ALTERNATE-SERVER (for TLS).</summary>
    public const ushort AlternateDomain = 0x8003;

    /// <summary>ICMP (RFC 8656 §18.13): the ICMP type and code a Data indication reports.</summary>
    public const ushort Icmp = 0x8004;

    /// <summary>SOFTWARE (RFC 8489 §14.14): a description of the sender's software, under 128 characters.</summary>
    public const ushort Software = 0x8022;

    /// <summary>ALTERNATE-SERVER (RFC 8489 §14.15): the server a 300 (Try Alternate) response redirects to.</summary>
    public const ushort AlternateServer = 0x8023;

    /// <summary>FINGERPRINT (RFC 8489 §14.7): CRC-32 of the message XOR 0x5354554E; always the last attribute.</summary>
    public const ushort Fingerprint = 0x8028;

    /// <summary>ICE-CONTROLLED (RFC 8445 §16.1): the sender is the controlled agent; carries its 64-bit tie-breaker.</summary>
    public const ushort IceControlled = 0x8029;

    /// <summary>ICE-CONTROLLING (RFC 8445 §16.1): the sender is the controlling agent; carries its 64-bit tie-breaker.</summary>
    public const ushort IceControlling = 0x802A;

    /// <summary>RESPONSE-ORIGIN (RFC 5780 §7.3): the address the response was sent from.</summary>
    public const ushort ResponseOrigin = 0x802B;

    /// <summary>OTHER-ADDRESS (RFC 5780 §7.4): the server's alternate IP and port, for behaviour discovery.</summary>
    public const ushort OtherAddress = 0x802C;

    /// <summary>RFC 8489 §14: types below 0x8000 must be understood or the request is rejected with 420.</summary>
    public static bool IsComprehensionRequired(ushort type) => type < 0x8000;
}

/// <summary>Error codes used by STUN and TURN (RFC 8489 §14.8, RFC 8656 §19).</summary>
public static class StunErrorCode
{
    /// <summary>300 Try Alternate: use the server in ALTERNATE-SERVER.</summary>
    public const int TryAlternate = 300;

    /// <summary>400 Bad Request: the request was malformed.</summary>
    public const int BadRequest = 400;

    /// <summary>401 Unauthenticated: credentials are missing or wrong; the response carries REALM and NONCE.</summary>
    public const int Unauthenticated = 401;

    /// <summary>403 Forbidden: the request is valid but not allowed (RFC 8656: e.g. a peer address the server refuses).</summary>
    public const int Forbidden = 403;

    /// <summary>420 Unknown Attribute: a comprehension-required attribute was not understood (listed in UNKNOWN-ATTRIBUTES).</summary>
    public const int UnknownAttribute = 420;

    /// <summary>437 Allocation Mismatch (RFC 8656): no allocation for this 5-tuple, or one already exists for Allocate.</summary>
    public const int AllocationMismatch = 437;

    /// <summary>438 Stale Nonce: retry with the NONCE in the response.</summary>
    public const int StaleNonce = 438;

    /// <summary>440 Address Family not Supported (RFC 8656): the requested relay address family is not offered.</summary>
    public const int AddressFamilyNotSupported = 440;

    /// <summary>441 Wrong Credentials (RFC 8656): the credentials differ from those that created the allocation.</summary>
    public const int WrongCredentials = 441;

    /// <summary>442 Unsupported Transport Protocol (RFC 8656): REQUESTED-TRANSPORT names a protocol the server does not relay.</summary>
    public const int UnsupportedTransportProtocol = 442;

    /// <summary>443 Peer Address Family Mismatch (RFC 8656): the peer address's family differs from the relayed address's.</summary>
    public const int PeerAddressFamilyMismatch = 443;

    /// <summary>486 Allocation Quota Reached (RFC 8656): the user has as many allocations as the server allows.</summary>
    public const int AllocationQuotaReached = 486;

    /// <summary>487 Role Conflict (RFC 8445 §7.3.1.1): both ICE agents claim the same role; the requester should switch.</summary>
    public const int RoleConflict = 487;

    /// <summary>500 Server Error: a temporary error; the client may retry.</summary>
    public const int ServerError = 500;

    /// <summary>508 Insufficient Capacity (RFC 8656): the server has no relayed address or port left.</summary>
    public const int InsufficientCapacity = 508;

    /// <summary>The reason phrase RFC 8489 §14.8 and RFC 8656 §19 give for <paramref name="code"/>; "Error" for a code not listed here.</summary>
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

    /// <summary>RFC 8489 §14.6: the full HMAC-SHA256, 32 bytes: the size Peerway writes and the largest it accepts.</summary>
    public const int MessageIntegritySha256Size = 32;
}
