import io

import yappi

from tests.conftest import Stack, body_of, valid_request


def test_prof(stack: Stack) -> None:
    body_of(stack.post_request(valid_request(ticketId="1")))
    stack.drain()
    stack.graph.served_log.reset()
    yappi.set_clock_type("cpu")
    yappi.start()
    for n in range(20):
        uid = stack.tenant.add_user(f"u{n}@contoso.onmicrosoft.com", f"U{n}")
        body_of(stack.post_request(valid_request(user={"type": "existing", "id": uid}, ticketId=f"x{n}")))
    stack.drain()
    yappi.stop()
    stats = yappi.get_func_stats()
    # only product code and libraries, not the simulator
    out = io.StringIO()
    stats.sort("ttot").print_all(out=out, columns={0: ("name", 90), 1: ("ncall", 8), 3: ("ttot", 8), 2: ("tsub", 8)})
    lines = out.getvalue().splitlines()
    print("\n".join(l for l in lines[:400] if "graph_simulator" not in l and "http/server" not in l and "socketserver" not in l)[:20000])
    ts = yappi.get_thread_stats()
    ts.print_all()
