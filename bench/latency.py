"""Seconds from a new item appearing in a local feed to the Slack-compatible receiver getting its
alert, through `monitor run` with a 10-second poll interval: p50 and p95 over N items.

    HF_HUB_OFFLINE=1 python bench/latency.py --items 100
    HF_HUB_OFFLINE=1 python bench/latency.py --items 10 --backend torch   # default: analysis.backend's default

Each item is a short report accusing a country no earlier item (and no seed) accused of hacking or
of a covert influence operation, so each one should alert; they are published one at a time, at
a random moment of the poll cycle, and the next is published once the alert arrives (or after
--timeout). Items with no alert are counted apart.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._service import start_service, stop_service, wait_for, write_config
from monitor.analysis.gazetteer import default_gazetteer
from monitor.config import AnalysisSettings
from tests.support.feedserver import FeedItem, FeedServer, rss_document
from tests.support.receivers import SlackReceiver

COUNTRIES = [
    "Belarus",
    "Venezuela",
    "Cuba",
    "Syria",
    "Azerbaijan",
    "Turkey",
    "Saudi Arabia",
    "Egypt",
    "Pakistan",
    "Vietnam",
    "Myanmar",
    "Eritrea",
    "Nicaragua",
    "Serbia",
    "Hungary",
    "Kazakhstan",
    "Uzbekistan",
    "Qatar",
    "United Arab Emirates",
    "Ethiopia",
    "Rwanda",
    "Sudan",
    "Libya",
    "Algeria",
    "Morocco",
    "Tajikistan",
    "Turkmenistan",
    "Laos",
    "Cambodia",
    "Thailand",
    "Indonesia",
    "Malaysia",
    "Philippines",
    "Bangladesh",
    "Sri Lanka",
    "Nepal",
    "Mongolia",
    "Armenia",
    "Georgia",
    "Moldova",
    "Bahrain",
    "Oman",
    "Jordan",
    "Lebanon",
    "Iraq",
    "Afghanistan",
    "Zimbabwe",
    "Uganda",
    "Kenya",
    "Nigeria",
    "Cameroon",
    "Chad",
    "Mali",
    "Niger",
    "Burkina Faso",
    "Guinea",
    "Angola",
    "Mozambique",
    "Tanzania",
    "Zambia",
    "Bolivia",
    "Ecuador",
    "Peru",
    "Colombia",
    "Honduras",
    "Guatemala",
    "El Salvador",
    "Brazil",
    "Argentina",
    "Mexico",
    "India",
    "Israel",
    "Kuwait",
    "Yemen",
    "Somalia",
    "Djibouti",
    "Gabon",
    "Congo",
    "Burundi",
    "Malawi",
    "Namibia",
    "Botswana",
    "Madagascar",
    "Senegal",
    "Ghana",
    "Togo",
    "Benin",
    "Liberia",
    "Sierra Leone",
    "Tunisia",
    "Kyrgyzstan",
    "Bhutan",
    "Brunei",
    "Fiji",
    "Papua New Guinea",
    "Paraguay",
    "Uruguay",
    "Chile",
    "Panama",
    "Haiti",
    "Slovakia",
    "Bulgaria",
    "Romania",
    "Croatia",
    "Montenegro",
    "Albania",
    "Bosnia and Herzegovina",
    "Mauritania",
]
TARGETS = [
    "voters in Ohio",
    "the Senate race in Arizona",
    "county election offices in Georgia",
    "the mayoral race in Chicago",
    "voter registration systems in Michigan",
    "a congressional campaign in Texas",
    "election officials in Nevada",
    "the governor's race in Pennsylvania",
    "poll workers in Wisconsin",
    "the state legislature race in Florida",
]
TEMPLATES = [
    "U.S. intelligence officials said {c} ran a covert influence operation to interfere in the election, "
    "using fake social media accounts to target {t}. The officials said the campaign was directed by {c}'s intelligence service.",  # noqa: E501
    "Hackers working for the government of {c} broke into systems tied to {t} ahead of the vote, according to a "
    "government report on foreign election interference released on {d}.",
]


def named_alone(countries: list[str]) -> list[str]:
    """The countries the gazetteer reads from their name alone. Some names are never read alone
    (Georgia, Jordan, Chad: also a U.S. state, a person, a lake), so an item naming one would
    measure the gazetteer, not the latency."""
    gazetteer = default_gazetteer()
    kept = []
    for country in countries:
        found = gazetteer.find(country)
        if len(found) == 1 and (found[0].start, found[0].end) == (0, len(country)):
            kept.append(country)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--interval", type=float, default=10.0, help="poll interval, seconds")
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for one alert")
    parser.add_argument("--backend", default=AnalysisSettings().backend)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    print(f"command: {' '.join(['python', *sys.argv])}")
    rng = random.Random(args.seed)
    countries = named_alone(COUNTRIES)
    with tempfile.TemporaryDirectory() as tmp, FeedServer() as server, SlackReceiver() as slack:
        feeds: list[list[FeedItem]] = [[] for _ in range(args.feeds)]
        for f in range(args.feeds):
            server.set_feed(f"/f{f}.xml", rss_document([]))
        config = write_config(
            Path(tmp),
            [server.url(f"/f{f}.xml") for f in range(args.feeds)],
            interval_s=args.interval,
            backend=args.backend,
            slack_url=slack.url,
        )
        log = Path(tmp) / "service.log"
        process = start_service(config, log)
        latencies: list[float] = []
        missed: list[str] = []
        try:
            # Ready once every feed has been polled twice (model loaded, first cycle done).
            wait_for(
                lambda: all(len(server.requests_for(f"/f{f}.xml")) >= 2 for f in range(args.feeds)),
                300,
                "the first polls",
            )
            for i in range(args.items):
                if process.poll() is not None:
                    raise SystemExit(f"monitor run exited:\n{log.read_text()[-3000:]}")
                country = countries[i % len(countries)]
                link = f"http://news.local/latency/{i}"
                text = rng.choice(TEMPLATES).format(c=country, t=rng.choice(TARGETS), d=f"{rng.randint(1, 28)} March")
                item = FeedItem(
                    title=f"{country} accused of election interference ({i})",
                    link=link,
                    guid=f"lat-{i}",
                    description=text,
                )
                f = i % args.feeds
                feeds[f] = [item, *feeds[f][:9]]
                time.sleep(rng.uniform(0, args.interval))  # a random moment of the poll cycle
                before = len(slack.messages)
                published = time.monotonic()
                server.set_feed(f"/f{f}.xml", rss_document(feeds[f]))
                deadline = published + args.timeout
                arrived = None
                while time.monotonic() < deadline and arrived is None:
                    for message in slack.messages[before:]:
                        if link in json.dumps(message.json):
                            arrived = message.received_at
                    time.sleep(0.05)
                if arrived is None:
                    missed.append(country)
                else:
                    latencies.append(arrived - published)
                print(
                    f"  item {i:3d} {country:22s} " + (f"{arrived - published:5.1f} s" if arrived else "no alert"),
                    flush=True,
                )
        finally:
            stop_service(process)
    print(f"backend {args.backend}, poll interval {args.interval:.0f} s, {args.feeds} feeds")
    if latencies:
        p50, p95 = np.percentile(latencies, [50, 95])
        print(
            f"alerts {len(latencies)}/{args.items}: p50 {p50:.1f} s, p95 {p95:.1f} s, max "
            f"{max(latencies):.1f} s (goal p95 <= 15 s)"
        )
    if missed:
        print(f"no alert within {args.timeout:.0f} s for {len(missed)}: {', '.join(missed)}")


if __name__ == "__main__":
    main()
