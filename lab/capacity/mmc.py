"""M/M/c: Poisson arrivals, exponential service, c servers. For the hours a fleet keeps up,
the mean wait that chance alone causes (Erlang C)."""


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival has to wait; `offered` = arrival rate / one server's rate."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    # The Erlang B recursion, then C from B: stable for large fleets, unlike the factorials.
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    rho = offered / servers
    return b / (1 - rho + rho * b)


def mean_wait_s(arrival_rps: float, server_rps: float, servers: int) -> float | None:
    """Mean time in the queue before service starts; None when the servers cannot keep up
    (then the fluid model's backlog is the answer)."""
    if arrival_rps <= 0:
        return 0.0
    capacity = servers * server_rps
    if arrival_rps >= capacity:
        return None
    return erlang_c(servers, arrival_rps / server_rps) / (capacity - arrival_rps)
