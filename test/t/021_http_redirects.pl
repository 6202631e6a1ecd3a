# Redirects stay within the origin of the request (scheme, host and port):
# a credential in a custom header never reaches another port, host or
# scheme, whether the connection there would be new or reused.  With
# synchub.allowed_hosts = '*', IPv6 addresses that embed an internal IPv4
# address (NAT64, 6to4), Teredo, IPv4-compatible and -mapped addresses and
# the IPv4 ranges 192.0.0.0/24 and 198.18.0.0/15 are refused.
#
# The mocks speak plain HTTP only, so an https to http downgrade is not
# exercised; the scheme rule is checked with an http to https redirect.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SynchubTest;
use Test::More;

my $a = start_mock();
my $b = start_mock();
my ($url_a, $port_a, $port_b) = ($a->{url}, $a->{port}, $b->{port});
my $node = synchub_node('redirects');
ok(wait_for_worker($node, 'postgres'), 'worker running');

my $secret = 'REDIR-SECRET-5d1e';

# A job with the secret in an API key header; returns its id.
sub enqueue_keyed
{
	my ($url, $extra) = @_;
	$extra //= '{}';
	return $node->safe_psql('postgres',
		"SELECT synchub.enqueue('http', jsonb_build_object('url', '$url',"
		  . " 'headers', jsonb_build_object('X-Api-Key', '$secret')) || '$extra'::jsonb,"
		  . " queue => 'synchub', max_attempts => 1)");
}

# $mock answers requests for $path with 302 to $location.
sub redirect
{
	my ($mock, $path, $location) = @_;
	mock_post($mock, '/_mock/faults',
		encode_json({ match => $path, status => 302, count => -1, headers => { Location => $location } }));
}

sub job
{
	my ($id, $cols) = @_;
	return $node->safe_psql('postgres', "SELECT $cols FROM synchub.jobs WHERE id = $id");
}

# requests $mock received whose path starts with $path
sub seen
{
	my ($mock, $path) = @_;
	return mock_get($mock, "/_mock/requests?path=$path");
}

my $refused = 'redirect to another scheme, host or port refused';

# same origin, relative and absolute: followed, the header goes along
mock_post($a, '/_mock/reset');
redirect($a, '/redir/same', '/echo?via=relative');
redirect($a, '/redir/abs', "http://127.0.0.1:$port_a/echo?via=absolute");
my $id1 = enqueue_keyed("$url_a/redir/same");
my $id2 = enqueue_keyed("$url_a/redir/abs");
ok(wait_finished($node, 'postgres'), 'same-origin redirect jobs finish');
is(job($id1, "state, result->'body'->>'path', result->'body'->'query'->>'via', result->'body'->'headers'->>'x-api-key'"),
	"succeeded|/echo|relative|$secret", 'a relative redirect is followed with the header');
is(job($id2, "state, result->'body'->'query'->>'via', result->'body'->'headers'->>'x-api-key'"),
	"succeeded|absolute|$secret", 'an absolute redirect to the same origin is followed with the header');

# another port on the same address, no connection there yet
mock_post($a, '/_mock/reset');
mock_post($b, '/_mock/reset');
redirect($a, '/redir/other', "http://127.0.0.1:$port_b/echo?via=other-port");
my $conns = mock_get($b, '/_mock/stats')->{connections};
my $id = enqueue_keyed("$url_a/redir/other");
ok(wait_finished($node, 'postgres'), 'cross-port redirect job finishes');
is(job($id, 'state, last_error'), "dead|GET $url_a/redir/other: $refused",
	'a redirect to another port goes dead');
is(seen($a, '/redir/other')->[0]{headers}{'x-api-key'}, $secret, 'the origin received the header');
my $stats = mock_get($b, '/_mock/stats');
is(($stats->{connections} - $conns) . '/' . $stats->{requests}, '1/0',
	'the other port saw no connection but the one reading its stats');

# another port with an idle connection already open to it: nothing is sent
mock_post($b, '/_mock/reset');
$id = enqueue_keyed("http://127.0.0.1:$port_b/ok");
ok(wait_finished($node, 'postgres'), 'a job to the other port finishes');
is(job($id, 'state'), 'succeeded', 'the other port is reachable and allowed');
$id = enqueue_keyed("$url_a/redir/other");
ok(wait_finished($node, 'postgres'), 'cross-port redirect job (reusable connection) finishes');
is(job($id, 'state, last_error'), "dead|GET $url_a/redir/other: $refused",
	'a redirect to another port goes dead when a connection there is open');
is(scalar @{ seen($b, '/echo') }, 0, 'the other port received no request');

# another host name for the same address and port
mock_post($a, '/_mock/reset');
redirect($a, '/redir/name', "http://localhost:$port_a/echo?via=name");
$id = enqueue_keyed("$url_a/redir/name");
ok(wait_finished($node, 'postgres'), 'cross-host redirect job finishes');
is(job($id, 'state, last_error'), "dead|GET $url_a/redir/name: $refused",
	'a redirect to another host name goes dead');
is(scalar @{ seen($a, '/echo') }, 0, 'no request under the other host name');

# another scheme: http to https on the same host and port
mock_post($a, '/_mock/reset');
redirect($a, '/redir/scheme', "https://127.0.0.1:$port_a/echo?via=scheme");
$conns = mock_get($a, '/_mock/stats')->{connections};
$id = enqueue_keyed("$url_a/redir/scheme");
ok(wait_finished($node, 'postgres'), 'cross-scheme redirect job finishes');
is(job($id, 'state, last_error'), "dead|GET $url_a/redir/scheme: $refused",
	'a redirect to another scheme goes dead');
is(scalar @{ seen($a, '/echo') }, 0, 'no request under the other scheme');

# the redirect limit still holds within the origin
mock_post($a, '/_mock/reset');
redirect($a, '/redir/loop', '/redir/loop');
$id = enqueue_keyed("$url_a/redir/loop");
ok(wait_finished($node, 'postgres'), 'redirect loop job finishes');
like(job($id, 'state, last_error'), qr/^dead\|GET \Q$url_a\E\/redir\/loop: Maximum \(5\) redirects followed$/,
	'a redirect loop stops after 5 redirects');
is(scalar @{ seen($a, '/redir/loop') }, 6, 'the first request and 5 redirects');

# deny list with synchub.allowed_hosts = '*'
$node->safe_psql('postgres', 'SELECT synchub.stop_worker()');
$node->safe_psql('postgres', "ALTER SYSTEM SET synchub.allowed_hosts = '*'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->poll_query_until('postgres', "SELECT current_setting('synchub.allowed_hosts') = '*'");
$node->safe_psql('postgres', 'SELECT synchub.start_worker()');
ok(wait_for_worker($node, 'postgres'), 'worker running with allowed_hosts *');

my @internal = (
	[ '127.0.0.1', 'loopback' ],
	[ '198.18.0.1', 'benchmarking 198.18.0.0/15' ],
	[ '198.19.255.254', 'benchmarking, upper half' ],
	[ '192.0.0.170', 'IETF protocol assignments 192.0.0.0/24' ],
	[ '[64:ff9b::a9fe:a9fe]', 'NAT64 of 169.254.169.254' ],
	[ '[64:ff9b::7f00:1]', 'NAT64 of 127.0.0.1' ],
	[ '[64:ff9b::a00:1]', 'NAT64 of 10.0.0.1' ],
	[ '[64:ff9b:1::a9fe:a9fe]', 'local-use NAT64 64:ff9b:1::/48' ],
	[ '[2002:a9fe:a9fe::1]', '6to4 of 169.254.169.254' ],
	[ '[2002:c0a8:101::1]', '6to4 of 192.168.1.1' ],
	[ '[2001:0:c000:201::1]', 'Teredo 2001::/32' ],
	[ '[::ffff:a9fe:a9fe]', 'IPv4-mapped' ],
	[ '[::a9fe:a9fe]', 'IPv4-compatible' ],
	[ '[::1]', 'IPv6 loopback' ]);
my %ids;
for my $t (@internal)
{
	$ids{ $t->[0] } = enqueue_http($node, 'postgres', "http://$t->[0]:$port_a/ok",
		payload => '{"timeout_ms": 2000}', max_attempts => 1);
}
ok(wait_finished($node, 'postgres'), 'jobs to internal addresses finish');
for my $t (@internal)
{
	is(job($ids{ $t->[0] }, 'state, last_error'),
		"dead|GET http://$t->[0]:$port_a/ok: address not allowed by synchub.allowed_hosts",
		"refused: $t->[1] ($t->[0])");
}

stop_mock($a);
stop_mock($b);
$node->stop;
done_testing();
