# Rate-limit keys: host names longer than 127 bytes keep their own state
# (circuit breaker, and keys longer than the stored text that share it),
# and the shared table of keys, filled by many hosts, neither resets a
# budget that still holds requests nor lets a key with windows run
# unlimited when no entry is free.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SynchubTest;
use Test::More;
use Time::HiRes qw(time);

my $mock = start_mock();
my $port = $mock->{port};
# names under .localhost resolve to the loopback addresses (libcurl)
my $node = synchub_node('rlkeys',
	"synchub.circuit_failures = 3\nsynchub.circuit_cooldown = '60s'\n"
	  . "synchub.allowed_hosts = '127.0.0.1, ::1'\n");
ok(wait_for_worker($node, 'postgres'), 'worker running');

sub psql { return $node->safe_psql('postgres', $_[0]); }

sub mock_count
{
	my ($path) = @_;
	return scalar @{ mock_get($mock, "/_mock/requests?path=$path") };
}

# a 201-byte host name: its three failures open one circuit
my $long = join('.', 'a' x 63, 'b' x 63, 'c' x 63) . '.localhost';
is(length($long), 201, 'a host name of 201 bytes');
enqueue_http($node, 'postgres', "http://$long:$port/status/500", n => 3, max_attempts => 1);
ok(wait_finished($node, 'postgres'), 'three failing jobs of the long host finish');
is(psql("SELECT count(*), max(state), max(consecutive_failures) FROM synchub.circuits WHERE key = '$long'"),
	'1|open|3', 'one entry for the long host, its circuit open after 3 failures');
my $held = enqueue_http($node, 'postgres', "http://$long:$port/ok/long");
psql('SELECT pg_sleep(1.5)');
is(psql("SELECT state, attempts FROM synchub.jobs WHERE id = $held"),
	'pending|0', 'a job for the long host waits for its open circuit');
is(mock_count('/ok/long'), 0, 'no request reached the long host');
psql("SELECT synchub.cancel($held)");

# two 268-byte names that differ only after their first 255 bytes
my $base = join('.', ('d' x 63) x 4);
my ($k1, $k2) = ("$base.k1.localhost", "$base.k2.localhost");
is(length($k1), 268, 'host names of 268 bytes');
enqueue_http($node, 'postgres', "http://$k1:$port/status/500", n => 3, max_attempts => 1);
enqueue_http($node, 'postgres', "http://$k2:$port/status/500", n => 1, max_attempts => 1);
ok(wait_finished($node, 'postgres'), 'the failing jobs of both hosts finish');
is(psql("SELECT string_agg(state || ':' || consecutive_failures, ',' ORDER BY consecutive_failures)"
	  . " FROM synchub.circuits WHERE key = '$base'"),
	'closed:1,open:3', 'each host has its own circuit (shown with the first 255 bytes)');
my $j1 = enqueue_http($node, 'postgres', "http://$k1:$port/ok/k1");
my $j2 = enqueue_http($node, 'postgres', "http://$k2:$port/ok/k2");
$node->poll_query_until('postgres', "SELECT state = 'succeeded' FROM synchub.jobs WHERE id = $j2");
psql('SELECT pg_sleep(1)');
is(psql("SELECT state, attempts FROM synchub.jobs WHERE id IN ($j1, $j2) ORDER BY id"),
	"pending|0\nsucceeded|1", 'the host with the open circuit waits, the other one runs');
is(mock_count('/ok/k1'), 0, 'no request reached the host with the open circuit');
psql("SELECT synchub.cancel($j1)");

# a budget of 5 per 30 s, spent, survives 300 other hosts going through the table
psql("INSERT INTO synchub.rate_limits VALUES ('127.0.0.1', 5, 30)");
psql('SELECT pg_sleep(1.2)');    # the worker reads the table every second
my $url = $mock->{url};
my $t0 = time();
enqueue_http($node, 'postgres', "$url/ok/budget", n => 5);
ok(wait_finished($node, 'postgres'), 'the budget of 127.0.0.1 is spent');
psql("SELECT synchub.enqueue('http', jsonb_build_object('url', 'http://h' || i || '.localhost:$port/status/500'),"
	  . " queue => 'synchub', max_attempts => 1) FROM generate_series(1, 300) i");
ok(wait_finished($node, 'postgres'), '300 failing jobs of 300 other hosts finish');
my $after = enqueue_http($node, 'postgres', "$url/ok/after", n => 3);
psql('SELECT pg_sleep(2)');
my $elapsed = time() - $t0;
cmp_ok($elapsed, '<', 25, sprintf('still inside the 30 s window (%.1f s)', $elapsed));
is(mock_count('/ok/budget'), 5, 'the mock saw the 5 requests of the budget');
is(mock_count('/ok/after'), 0, 'no request beyond the budget after the churn');
is(psql("SELECT string_agg(DISTINCT state || '|' || attempts, ',') FROM synchub.jobs WHERE id IN ($after)"),
	'pending|0', 'the jobs beyond the budget wait, with no attempt used');
psql("SELECT synchub.cancel(id) FROM unnest('{$after}'::bigint[]) id");

# every entry paused by a 429: a key with windows waits instead of running unlimited
psql("INSERT INTO synchub.rate_limits VALUES ('localhost', 100, 1)");
psql('SELECT pg_sleep(1.2)');
my $paused = psql("SELECT string_agg(synchub.enqueue('http', jsonb_build_object('url',"
	  . " 'http://p' || i || '.localhost:$port/status/429?retry_after=20'), queue => 'synchub')::text, ',')"
	  . " FROM generate_series(1, 300) i");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 300 FROM synchub.jobs WHERE id IN ($paused) AND last_error LIKE '%HTTP 429%'"),
	'300 hosts answered 429 with Retry-After: 20');
is(psql("SELECT count(*), count(blocked_until) >= 200 FROM synchub.circuits"),
	'256|t', 'the table is full, nearly all of it with pauses');
my $full = enqueue_http($node, 'postgres', "http://localhost:$port/ok/full");
psql('SELECT pg_sleep(2)');
is(psql("SELECT state, attempts FROM synchub.jobs WHERE id = $full"),
	'pending|0', 'a job of a key with windows waits while no entry is free');
is(mock_count('/ok/full'), 0, 'it sent no request');
psql("SELECT synchub.cancel(id) FROM unnest('{$paused}'::bigint[]) id");
ok($node->poll_query_until('postgres', "SELECT state = 'succeeded' FROM synchub.jobs WHERE id = $full"),
	'it runs once the pauses are over');
is(psql("SELECT attempts FROM synchub.jobs WHERE id = $full"), '1', 'with one attempt');

$node->stop;
stop_mock($mock);
done_testing();
