using System.Net;
using Peerway.Nat.Stun;
using Peerway.Nat.Turn;

namespace Peerway.Nat.Ice;

/// <summary>IceAgent, gathering: server-reflexive (STUN) and relayed (TURN) candidates, TURN permissions and refresh.</summary>
public sealed partial class IceAgent
{
    private async Task GatherServerReflexiveAsync(IPEndPoint server)
    {
        try
        {
            var response = await _stun.BindingAsync(server).ConfigureAwait(false);
            if (response.Class == StunClass.SuccessResponse && response.TryGetXorAddress(StunAttributeType.XorMappedAddress, out var mapped))
            {
                AddServerReflexive(mapped!, server);
            }
        }
        catch (Exception ex) when (ex is TimeoutException or ObjectDisposedException or InvalidOperationException)
        {
            LogGatherFailed("srflx", server, ex.Message);
        }
        finally
        {
            GatherDone();
        }
    }

    private async Task GatherRelayAsync()
    {
        var turn = _turn!;
        try
        {
            var relayed = await turn.AllocateAsync().ConfigureAwait(false);
            var events = new List<Action>();
            List<IPAddress> permits;
            lock (_gate)
            {
                if (_disposed) return;
                var baseAddress = turn.LocalEndPoint.Address;
                _relay = new IceCandidate(IceCandidate.ComputeFoundation(IceCandidateType.Relay, baseAddress, turn.Server), IceCandidate.ComputePriority(IceCandidateType.Relay), relayed, IceCandidateType.Relay, turn.MappedAddress);
                AddLocal(_relay, events);
                foreach (var r in _remotes) AddPair(_relay, r, PairState.Waiting);
                permits = [.. _remotes.Select(r => r.Address.Address).Where(_permissions.Add)];
                _nextTurnRefresh = _time.GetUtcNow() + turn.Lifetime / 2;
            }

            Raise(events);
            if (turn.MappedAddress is { } mapped && _options.StunServer is null) AddServerReflexive(mapped, turn.Server);
            foreach (var ip in permits) _background.Track(PermitAsync(ip));
        }
        catch (Exception ex) when (ex is TimeoutException or ObjectDisposedException or InvalidOperationException or TurnException)
        {
            LogGatherFailed("relay", turn.Server, ex.Message);
        }
        finally
        {
            GatherDone();
        }
    }

    private void AddServerReflexive(IPEndPoint mapped, IPEndPoint server)
    {
        var events = new List<Action>();
        lock (_gate)
        {
            if (_disposed || (_host is not null && mapped.Equals(_host.Address))) return;
            var baseAddress = _socket.LocalEndPoint;
            AddLocal(new IceCandidate(IceCandidate.ComputeFoundation(IceCandidateType.ServerReflexive, baseAddress.Address, server), IceCandidate.ComputePriority(IceCandidateType.ServerReflexive), mapped, IceCandidateType.ServerReflexive, baseAddress), events);
        }

        Raise(events);
    }

    private void GatherDone()
    {
        bool done;
        lock (_gate) done = --_gathersPending == 0 && !_disposed;
        if (done) GatheringComplete?.Invoke(this, EventArgs.Empty);
    }

    /// <summary>RFC 8656 §9: the peer's IP must be permitted before the relay passes its datagrams either way.</summary>
    private async Task PermitAsync(IPAddress ip)
    {
        try
        {
            await _turn!.CreatePermissionAsync([new IPEndPoint(ip, 0)]).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or ObjectDisposedException or InvalidOperationException or TurnException)
        {
            LogPermissionFailed(ip, ex.Message);
        }
    }

    private async Task RefreshTurnAsync()
    {
        try
        {
            await _turn!.RefreshAsync(TimeSpan.FromMinutes(10)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or ObjectDisposedException or InvalidOperationException or TurnException)
        {
            LogGatherFailed("refresh", _turn!.Server, ex.Message);
        }
    }
}
