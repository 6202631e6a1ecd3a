# Rate limits (several windows), 429 with Retry-After, and the circuit
# breaker; throttled jobs stay pending without using attempts.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SynchubTest;
use Test::More;

my $mock = start_mock();
my $url = $mock->{url};
my $node = synchub_node('rate',
	"synchub.circuit_failures = 3\nsynchub.circuit_cooldown = '2s'\n");
ok(wait_for_worker($node, 'postgres'), 'worker running');

# 10 per second and 15 per 2 seconds, measured by the mock
$node->safe_psql('postgres',
	"INSERT INTO synchub.rate_limits VALUES ('127.0.0.1', 10, 1), ('127.0.0.1', 15, 2)");
$node->safe_psql('postgres', 'SELECT pg_sleep(1.2)');    # the worker reads the table every second
mock_post($mock, '/_mock/reset');
enqueue_http($node, 'postgres', "$url/ok", n => 40);
ok(wait_finished($node, 'postgres'), '40 rate-limited jobs finish');
my $stats = mock_get($mock, '/_mock/stats');
is($stats->{requests}, 40, 'the mock saw 40 requests');
cmp_ok($stats->{max_in_window}{1}, '<=', 10, "never more than 10 in a second ($stats->{max_in_window}{1})");
cmp_ok($stats->{max_in_window}{2}, '<=', 15, "never more than 15 in 2 seconds ($stats->{max_in_window}{2})");
cmp_ok($stats->{max_in_window}{1}, '>=', 5, 'the limit, not something else, was the bound');
is($node->safe_psql('postgres', "SELECT count(*) FROM synchub.jobs WHERE state = 'succeeded' AND attempts = 1"),
	'40', 'throttled jobs used no attempt');
$node->safe_psql('postgres', 'DELETE FROM synchub.rate_limits');
$node->safe_psql('postgres', 'SELECT pg_sleep(1.2)');

# 429 with Retry-After: 2 pauses the host
mock_post($mock, '/_mock/reset');
my $a = enqueue_http($node, 'postgres', "$url/status/429?retry_after=2");
$node->poll_query_until('postgres', "SELECT last_error LIKE '%HTTP 429, retry after 2 s' FROM synchub.jobs WHERE id = $a");
my $b = enqueue_http($node, 'postgres', "$url/ok");
$node->poll_query_until('postgres', "SELECT state = 'succeeded' FROM synchub.jobs WHERE id = $b");
my $reqs = mock_get($mock, '/_mock/requests');
my ($t429) = map { $_->{t} } grep { $_->{path} eq '/status/429' } @$reqs;
my ($tok) = map { $_->{t} } grep { $_->{path} eq '/ok' } @$reqs;
cmp_ok($tok - $t429, '>=', 2, sprintf('the next request to the host came %.2f s after the 429', $tok - $t429));
is($node->safe_psql('postgres', "SELECT state, attempts FROM synchub.jobs WHERE id = $a"),
	'pending|0', 'the 429 did not count as an attempt');
$node->safe_psql('postgres', "SELECT synchub.cancel($a)");

# circuit breaker: 3 failures open it; it half-opens after 2 s and closes on success
$node->safe_psql('postgres', 'SELECT pg_sleep(2.1)');
enqueue_http($node, 'postgres', "$url/status/500", n => 3, max_attempts => 1);
ok(wait_finished($node, 'postgres'), 'three failing jobs finish');
is($node->safe_psql('postgres', "SELECT state, consecutive_failures FROM synchub.circuits WHERE key = '127.0.0.1'"),
	'open|3', 'the circuit is open after 3 failures');
my $c = enqueue_http($node, 'postgres', "$url/ok");
is($node->safe_psql('postgres', "SELECT state, attempts FROM synchub.jobs WHERE id = $c"),
	'pending|0', 'a job for an open circuit stays pending');
$node->poll_query_until('postgres', "SELECT state = 'succeeded' FROM synchub.jobs WHERE id = $c");
is($node->safe_psql('postgres', "SELECT state, attempts FROM synchub.jobs WHERE id = $c"),
	'succeeded|1', 'it runs once the circuit half-opens, with one attempt');
is($node->safe_psql('postgres', "SELECT state, consecutive_failures FROM synchub.circuits WHERE key = '127.0.0.1'"),
	'closed|0', 'the success closed the circuit');
$reqs = mock_get($mock, '/_mock/requests');
my ($t500) = reverse map { $_->{t} } grep { $_->{path} eq '/status/500' } @$reqs;
($tok) = reverse map { $_->{t} } grep { $_->{path} eq '/ok' } @$reqs;
cmp_ok($tok - $t500, '>=', 1.9, sprintf('the trial request came %.2f s after the last failure', $tok - $t500));

$node->stop;
stop_mock($mock);
done_testing();
