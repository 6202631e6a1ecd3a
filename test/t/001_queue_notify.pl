# A preloaded instance: synchub loads at start, the versions in the control
# file, META.json, the library and the installed extension agree, and every
# job state change arrives as NOTIFY synchub_jobs with the documented keys.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('notify');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'synchub'");
$node->start;

is($node->safe_psql('postgres', "SHOW shared_preload_libraries"), 'synchub',
	'server starts with synchub preloaded');
$node->safe_psql('postgres', 'CREATE EXTENSION synchub');

# Versions agree everywhere.
my ($control) = slurp_file('synchub.control') =~ /^default_version\s*=\s*'([^']+)'/m;
my $meta = decode_json(slurp_file('META.json'));
my $lib = $node->safe_psql('postgres', 'SELECT synchub.version()');
my $installed = $node->safe_psql('postgres',
	"SELECT extversion FROM pg_extension WHERE extname = 'synchub'");
ok(defined $control, "control file has a default_version ($control)");
is($meta->{version}, $control, 'META.json version equals the control file');
is($meta->{provides}{synchub}{version}, $control, 'META.json provides the same version');
is($lib, $control, 'the library reports the same version');
is($installed, $control, 'the installed extension has the same version');

# Run a job's life in a session that LISTENs; psql prints each notification.
my ($out, $err) = ('', '');
$node->psql('postgres', q{
	LISTEN synchub_jobs;
	SELECT synchub.enqueue('import', '{}', 7, 'nq') AS id \gset
	SELECT count(*) FROM synchub.claim('nq');
	SELECT synchub.progress(:id, 50, 100);
	SELECT synchub.complete(:id);
	SELECT 1;
}, stdout => \$out, stderr => \$err);

my @payloads = map { decode_json($_) }
  ($out =~ /Asynchronous notification "synchub_jobs" with payload "(.*?)" received/g);
is(scalar @payloads, 4, 'four notifications: enqueue, claim, progress, complete')
  or diag("stdout: $out\nstderr: $err");
is_deeply([ map { $_->{state} } @payloads ],
	[ 'pending', 'running', 'running', 'succeeded' ], 'states in order');
for my $p (@payloads)
{
	for my $key (qw(id state kind integration_id records_processed records_total))
	{
		ok(exists $p->{$key}, "payload of state $p->{state} has key $key");
	}
}
is($payloads[2]{records_processed}, 50, 'progress carries records_processed');
is($payloads[2]{records_total}, 100, 'progress carries records_total');
is($payloads[0]{integration_id}, 7, 'integration_id is a number');
is($payloads[3]{kind}, 'import', 'kind is carried');

# synchub.notify = off silences them.
$node->psql('postgres', q{
	SET synchub.notify = off;
	LISTEN synchub_jobs;
	SELECT synchub.enqueue('quiet', queue => 'nq');
	SELECT 1;
}, stdout => \$out, stderr => \$err);
unlike($out, qr/Asynchronous notification/, 'synchub.notify = off sends nothing');

# A failure and a dead letter notify too.
$node->psql('postgres', q{
	LISTEN synchub_jobs;
	SELECT synchub.enqueue('once', queue => 'nq2', max_attempts => 1) AS id \gset
	SELECT count(*) FROM synchub.claim('nq2');
	SELECT synchub.fail(:id, 'boom');
	SELECT 1;
}, stdout => \$out, stderr => \$err);
my @dead = map { decode_json($_) }
  ($out =~ /Asynchronous notification "synchub_jobs" with payload "(.*?)" received/g);
is($dead[-1]{state}, 'dead', 'a dead letter is notified');

$node->stop;
done_testing();
