// Adds content and fetches it by CID: a 1 MiB file is imported as UnixFS (CIDv1, raw leaves, as kubo's
// `ipfs add --cid-version 1`), exported as a CAR, imported into a second blockstore (every block verified against its
// CID) and read back from there by its root CID.
using System.Security.Cryptography;
using Peerway.Content.Blocks;
using Peerway.Content.Car;
using Peerway.Content.UnixFs;

using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
var content = new byte[1024 * 1024];
new Random(42).NextBytes(content);

var publisher = new MemoryBlockStore();
var added = new UnixFsImporter(publisher, new ImportOptions { CidVersion = 1 }).ImportBytes(content);
Console.WriteLine($"added {added.ContentSize} bytes as {added.Cid} ({publisher.Count} blocks)");

using var car = new MemoryStream();
var exported = await CarWriter.ExportDagAsync(publisher, added.Cid, car, cancel.Token);
if (!exported.Ok) throw new InvalidOperationException($"CAR export failed: {exported}");
Console.WriteLine($"CAR: {car.Length} bytes");

var fetcher = new MemoryBlockStore();
car.Position = 0;
var (imported, header) = await CarWriter.ImportAsync(car, fetcher, cancel.Token);
if (!imported.Ok) throw new InvalidOperationException($"CAR import failed: {imported}");
Console.WriteLine($"imported {fetcher.Count} verified blocks, root {header!.Roots[0]}");

using var output = new MemoryStream();
var read = await new UnixFsExporter(fetcher).ExportFileAsync(added.Cid, output, cancel.Token);
var same = read.Ok && SHA256.HashData(output.ToArray()).AsSpan().SequenceEqual(SHA256.HashData(content));
Console.WriteLine(same ? $"fetched {added.Cid}: {output.Length} bytes, identical" : $"fetch failed: {read}");
return same ? 0 : 1;
