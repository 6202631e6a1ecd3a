# The http job kind: many jobs at once, classification of what comes back
# (2xx, 5xx then success, 4xx, timeout, body over the cap), wake on commit.
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
my $url = $mock->{url};
my $node = synchub_node('http', "synchub.max_response_size = '64kB'\nsynchub.poll_interval = '1h'\n");
ok(wait_for_worker($node, 'postgres'), 'worker running');

# 1,000 jobs, all succeed, each exactly once
$node->safe_psql('postgres',
	"SELECT synchub.enqueue_many(jsonb_agg(jsonb_build_object('kind', 'http', 'queue', 'synchub',"
	  . " 'payload', jsonb_build_object('url', '$url/echo?n=' || i, 'method', 'POST', 'body', jsonb_build_object('i', i)))))"
	  . " FROM generate_series(1, 1000) i");
ok(wait_finished($node, 'postgres'), '1,000 jobs finish without a poll (wake on commit)');
is($node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE state = 'succeeded' AND attempts = 1"
	  . " AND (result->'body'->>'body')::jsonb = payload->'body'"
	  . " AND result->>'status' = '200') FROM synchub.jobs WHERE kind = 'http'"),
	'1000', 'every job succeeded once with its own response');
my $stats = mock_get($mock, '/_mock/stats');
is($stats->{requests}, 1000, 'the server saw exactly 1,000 requests');

# many at once: 32 requests of 500 ms each
mock_post($mock, '/_mock/reset');
my $t0 = time;
enqueue_http($node, 'postgres', "$url/delay/500", n => 32);
ok(wait_finished($node, 'postgres'), '32 slow jobs finish');
cmp_ok(time - $t0, '<', 4, '32 requests of 500 ms take less than 4 s');
cmp_ok(mock_get($mock, '/_mock/stats')->{max_concurrent}, '>=', 16, 'requests ran concurrently');

# wake on commit: a single job is picked up at once (poll is an hour)
$t0 = time;
my $id = enqueue_http($node, 'postgres', "$url/ok");
ok(wait_finished($node, 'postgres'), 'a single job runs');
cmp_ok(time - $t0, '<', 5, 'the commit woke the worker');

# 5xx then success
$id = enqueue_http($node, 'postgres', "$url/flaky/a?fail=2&code=502");
ok(wait_finished($node, 'postgres'), 'flaky job finishes; a retry wakes the worker');
is($node->safe_psql('postgres', "SELECT state, attempts, result->'body'->>'attempt' FROM synchub.jobs WHERE id = $id"),
	'succeeded|3|3', '502, 502, then 200: succeeded on the third attempt');

# other 4xx: dead at once, status and body in last_error
$id = enqueue_http($node, 'postgres', "$url/status/404?body=no+such+thing");
ok(wait_finished($node, 'postgres'), '404 finishes');
is($node->safe_psql('postgres', "SELECT state, attempts, last_error FROM synchub.jobs WHERE id = $id"),
	"dead|1|GET $url/status/404?[redacted]: HTTP 404: no such thing",
	'404 goes dead at once with status and body');

# timeout: retried, then dead with a clear error
$id = enqueue_http($node, 'postgres', "$url/delay/3000", payload => '{"timeout_ms": 200}', max_attempts => 2);
ok(wait_finished($node, 'postgres'), 'timing-out job finishes');
is($node->safe_psql('postgres', "SELECT state, attempts, last_error FROM synchub.jobs WHERE id = $id"),
	"dead|2|GET $url/delay/3000: timed out after 200 ms", 'a timeout is retried, then dead');

# body over the cap
$id = enqueue_http($node, 'postgres', "$url/bytes/100000");
ok(wait_finished($node, 'postgres'), 'large body finishes');
is($node->safe_psql('postgres', "SELECT state, attempts, result, last_error FROM synchub.jobs WHERE id = $id"),
	"dead|1||GET $url/bytes/100000: response body exceeds synchub.max_response_size (64 kB)",
	'a body over synchub.max_response_size fails clearly');

# an invalid payload
$id = $node->safe_psql('postgres', "SELECT synchub.enqueue('http', '{\"url\": \"ftp://x/\"}', queue => 'synchub')");
ok(wait_finished($node, 'postgres'), 'invalid payload finishes');
is($node->safe_psql('postgres', "SELECT state, last_error FROM synchub.jobs WHERE id = $id"),
	'dead|invalid http payload: "url" must start with http:// or https://', 'invalid payload goes dead');

# Payloads that must not take the worker down: a scalar body, a timeout far
# out of range.  The worker keeps its pid through them.
my $pid = worker_pid($node, 'postgres');
$id = enqueue_http($node, 'postgres', "$url/echo", payload => '{"method": "POST", "body": 42}');
my $id2 = enqueue_http($node, 'postgres', "$url/echo", payload => '{"method": "POST", "body": true}');
my $id3 = enqueue_http($node, 'postgres', "$url/ok", payload => '{"timeout_ms": 1e10}');
my $id4 = enqueue_http($node, 'postgres', "$url/ok", payload => '{"timeout_ms": -1e30}');
ok(wait_finished($node, 'postgres'), 'scalar bodies and wild timeouts finish');
is($node->safe_psql('postgres', "SELECT state, result->'body'->>'body' FROM synchub.jobs WHERE id IN ($id, $id2) ORDER BY id"),
	"succeeded|42\nsucceeded|true", 'a number or boolean body is sent as its JSON text');
is($node->safe_psql('postgres', "SELECT state, last_error FROM synchub.jobs WHERE id IN ($id3, $id4) ORDER BY id"),
	"dead|invalid http payload: \"timeout_ms\" must be between 1 and 3600000\n"
	  . "dead|invalid http payload: \"timeout_ms\" must be between 1 and 3600000",
	'a timeout out of range goes dead');
# valid JSON that jsonb refuses (a number beyond numeric's range) is kept as text
$id = enqueue_http($node, 'postgres', "$url/jsontext?body=%7B%22n%22%3A%201e200000%7D");
ok(wait_finished($node, 'postgres'), 'a body jsonb refuses finishes');
is($node->safe_psql('postgres', "SELECT state, jsonb_typeof(result->'body'), result->>'body' FROM synchub.jobs WHERE id = $id"),
	'succeeded|string|{"n": 1e200000}', 'a JSON body jsonb cannot hold is kept as a string');
is(worker_pid($node, 'postgres'), $pid, 'the worker survived all of them');

# a text body and response headers
$id = enqueue_http($node, 'postgres', "$url/bytes/5");
ok(wait_finished($node, 'postgres'), 'text body finishes');
is($node->safe_psql('postgres',
	"SELECT result->>'body', jsonb_typeof(result->'body'), result->'headers'->>'content-length' FROM synchub.jobs WHERE id = $id"),
	'xxxxx|string|5', 'a text body is a JSON string; headers are lower-cased');

$node->stop;
stop_mock($mock);
done_testing();
