"""The soak test's zone and configuration files: valid templates and broken variants."""


ZONE_HEAD = """$ORIGIN soak.test.
$TTL 300
@    SOA  ns1 hostmaster {serial} 3600 600 86400 60
@    NS   ns1
ns1  A    127.0.0.53
mail A    127.0.0.25
@    MX   10 mail
"""

BROKEN_ZONES = [
    # A syntax error after the new marker.
    ZONE_HEAD + 'gen TXT "{gen}"\nbad A 300.1.2.3\n',
    # No SOA.
    '$ORIGIN soak.test.\n$TTL 300\n@ NS ns1\nns1 A 127.0.0.53\ngen TXT "{gen}"\n',
    # CNAME next to other data.
    ZONE_HEAD + 'gen TXT "{gen}"\nmail CNAME ns1\n',
    # An $INCLUDE that does not exist.
    ZONE_HEAD + 'gen TXT "{gen}"\n$INCLUDE missing.inc\n',
    # Cut off in the middle of a record.
    ZONE_HEAD + 'gen TXT "{gen}"\nx 300 IN MX 10',
]

CONFIG = """[dns]
listen = ["127.0.0.1:{dns}"]
zones_dir = "zones"

[admin]
listen = "127.0.0.1:{admin}"
token = "{token}"

[[region]]
name = "r1"

[[region]]
name = "r2"

[health_check.instance]
protocol = "http"
port = {bp}
path = "/health"
interval = "1s"
timeout = "500ms"
healthy_threshold = 2
unhealthy_threshold = 2

[health_check.balancer]
protocol = "http"
port = {lbp}
path = "/health"
interval = "1s"
timeout = "500ms"
healthy_threshold = 2
unhealthy_threshold = 2

[pool.www]
health_check = "balancer"
steering = "ordered"
regions = ["r1", "r2"]
endpoints = [
  {{ address = "{lb1}", region = "r1" }},
  {{ address = "{lb2}", region = "r2" }},
]

[pool.rr]
health_check = "instance"
steering = "ordered"
regions = ["r1", "r2"]
endpoints = [
{rr_endpoints}
]

[[binding]]
name = "www.soak.test."
type = "A"
pool = "www"
ttl = "{ttl}s"

[[binding]]
name = "rr.soak.test."
type = "A"
pool = "rr"
ttl = "5s"

[target_group.r1]
health_check = "instance"
passive_failures = 1
passive_ejection = "5s"
deregistration_delay = "1s"
targets = [{r1_targets}]

[target_group.r2]
health_check = "instance"
passive_failures = 1
passive_ejection = "5s"
deregistration_delay = "1s"
targets = [{r2_targets}]

[[listener]]
name = "r1"
listen = "{lb1}:{lbp}"
target_group = "r1"

[[listener]]
name = "r2"
listen = "{lb2}:{lbp}"
target_group = "r2"
{extra}"""

BROKEN_CONFIGS = [
    "\n[dns.unknown_key]\nx = 1\n",                                  # unknown key
    "\n[[binding]]\nname = \"x.soak.test.\"\npool = \"nope\"\n",     # unknown pool
    "\n[pool.bad\nendpoints = []\n",                                  # TOML syntax
    "\n[[listener]]\nname = \"r3\"\nlisten = \"127.0.3.1:1\"\ntarget_group = \"missing\"\n",
]
