"""Each technician's load in the assign form, over HTTP against the real daemon: open
jobs, jobs in the case's desired period, absences, and the free ones listed first."""

from __future__ import annotations

from datetime import date
from functools import partial
from pathlib import Path

from admin_harness import add_operator, logged_in
from daemon_harness import make_settings, running_daemon

from nexusmail.clock import SystemClock
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.employees import Absence, EmployeeChange, update_employee
from nexusmail.tickets.models import Source
from nexusmail.tickets.new_requests import OpenRequest, open_request
from nexusmail.tickets.reply_tokens import load_reply_keys

LUCA, ION, ANA = "luca@firm.test", "ion@firm.test", "ana@firm.test"


async def test_the_assign_form_shows_load_and_puts_the_free_first(tmp_path: Path) -> None:
    """For a case wanted on 5-6 March: Ana (no jobs) first, Ion (one open job in
    another week) next, Luca (a job that week) after, and Luca's holiday shown."""
    async with running_daemon(make_settings(tmp_path / "data")) as daemon:
        store, now = daemon.running.store, SystemClock().now()
        keys = load_reply_keys(daemon.settings)
        for email, name in ((LUCA, "Luca"), (ION, "Ion"), (ANA, "Ana")):
            await store.write(partial(add_employee, email=email, name=name, language="it",
                                      now=now))

        def case(first: str, last: str) -> OpenRequest:
            return OpenRequest(customer_email="verdi@example.it", customer_name="Verdi",
                               subject="Caldaia",
                               description="E04", source=Source.API,
                               desired_from=date.fromisoformat(first),
                               desired_to=date.fromisoformat(last))

        for request, who in ((case("2027-03-05", "2027-03-06"), None),
                             (case("2027-03-04", "2027-03-05"), LUCA),
                             (case("2027-04-01", "2027-04-02"), ION)):
            number = await store.write(lambda tx, r=request: open_request(
                tx, r, now=now, settings=daemon.settings))
            if who:
                await store.write(lambda tx, n=number, w=who: assign(
                    tx, n, w, now=now, settings=daemon.settings, reply_keys=keys))
        await store.write(lambda tx: update_employee(tx, LUCA, EmployeeChange(absences=[
            Absence(date(2027, 3, 6), date(2027, 3, 8), "ferie")]), now=now))
        await add_operator(daemon, "anna@firm.test")
        async with logged_in(daemon, "anna@firm.test") as client:
            page = (await client.get("/interventions/1")).text
        form = page.split('name="employee_email"', 1)[1].split("</select>", 1)[0]
        options = [o.split(">", 1)[1] for o in form.split("<option")[2:]]
        assert [o.split(" ", 1)[0] for o in options] == ["Ana", "Ion", "Luca"]
        assert "0 open jobs" in options[0]
        assert "1 open job" in options[1]
        assert "in this period" not in options[1]
        assert "1 in this period" in options[2]
        assert "away 6 Mar 2027 – 8 Mar 2027" in options[2]
