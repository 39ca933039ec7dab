using Peerway.Net;
using Peerway.Core;
using Peerway.Torrent.Metainfo;
using Peerway.Torrent.Storage;
using Peerway.Torrent.Swarm;

namespace Peerway.Torrent.Tests.Swarm;

/// <summary>Builds a session on files, as the tests did before the storage seam: a seeder's content path, or a download directory.</summary>
internal static class TestSessions
{
    public static TorrentSession Create(NodeId infoHash, TorrentInfo? info, string path, bool contentIsSource, TorrentSessionOptions options, TimeProvider time, FileStorageOptions? storage = null)
    {
        var savePath = contentIsSource ? Path.GetDirectoryName(Path.GetFullPath(path))! : path;
        return new TorrentSession(infoHash, info, new FileStorageFactory(storage ?? new FileStorageOptions(), time), savePath, contentIsSource, options, new TcpStreamTransport(), time);
    }
}
