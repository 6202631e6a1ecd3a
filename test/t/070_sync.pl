# Sync jobs run by the worker against the mock CRM servers: for each
# provider a full import of 5,000 contacts equals the mock's store field by
# field, an incremental sync picks up exactly the changes, progress arrives
# by NOTIFY, and no credential reaches the log or a job row.  A kill -9 of
# the worker mid-import resumes from the checkpoint without re-fetching
# committed pages, and a storm of 429 answers ends with the job succeeded.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use File::Temp qw(tempdir);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SynchubTest;
use Test::More;

my $N = 5000;
my $dir = tempdir(CLEANUP => 1);
my $json = JSON::PP->new->canonical;
my @providers = qw(hubspot salesforce pipedrive);
my %page_size = (hubspot => 100, salesforce => 2000, pipedrive => 500);

my ($ports, $servers) = start_crm_mocks($dir, $N, 3, @providers);
my %port = %$ports;
my @servers = @$servers;

my $node = synchub_node('sync', "restart_after_crash = on\nlog_statement = none\n");
sub sql { return $node->safe_psql('postgres', $_[0]); }

sub mock { my $p = shift; return crm_request($port{$p}, @_); }

# Wait for a job to finish; returns "state|attempts|records_processed|records_total".
sub wait_job
{
	my ($id, $timeout) = @_;
	local $PostgreSQL::Test::Utils::timeout_default = $timeout // 60;
	$node->poll_query_until('postgres', "SELECT state IN ('succeeded', 'dead') FROM synchub.jobs WHERE id = $id")
	  or diag(sql("SELECT state, attempts, last_error FROM synchub.jobs WHERE id = $id"));
	return sql("SELECT concat_ws('|', state, attempts, records_processed, records_total) FROM synchub.jobs WHERE id = $id");
}

# Rows of the target that differ from the mock's store mapped by the
# integration's field map (typed columns exactly; properties key by key).
sub differences
{
	my ($iid, $p) = @_;
	my $store = mock($p, 'GET', '/_mock/contacts?token=test-token' . ($p eq 'pipedrive' ? '&format=v2' : ''));
	my $lit = $json->encode($store);
	$lit =~ s/\$m\$//g;
	return sql(qq{
		WITH m AS (SELECT * FROM jsonb_populate_recordset(NULL::synchub.contacts,
		                          synchub._provider_map_rows($iid, \$m\$$lit\$m\$::jsonb))),
		     c AS (SELECT * FROM synchub.contacts WHERE integration_id = $iid),
		     typed AS (
		       (SELECT external_id, email, first_name, last_name, company, phone, remote_updated_at, archived FROM m
		        EXCEPT SELECT external_id, email, first_name, last_name, company, phone, remote_updated_at, archived FROM c)
		       UNION ALL
		       (SELECT external_id, email, first_name, last_name, company, phone, remote_updated_at, archived FROM c
		        EXCEPT SELECT external_id, email, first_name, last_name, company, phone, remote_updated_at, archived FROM m))
		SELECT (SELECT count(*) FROM typed) || '/' ||
		       (SELECT count(*) FROM c JOIN m USING (external_id)
		         WHERE EXISTS (SELECT FROM jsonb_each(c.properties) e
		                        WHERE m.properties ? e.key AND m.properties -> e.key <> e.value)) || '/' ||
		       (SELECT count(*) FROM m) || '/' || (SELECT count(*) FROM c)});
}

# Run a sync in a session that LISTENs; returns (job id, notifications).
sub sync_listen
{
	my ($name, $mode) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', qq{
		LISTEN synchub_jobs;
		SELECT synchub.sync('$name', '$mode') AS id \\gset
		CREATE FUNCTION pg_temp.wait_job(job bigint) RETURNS void LANGUAGE plpgsql AS \$\$ BEGIN
		  WHILE EXISTS (SELECT FROM synchub.job_queue q WHERE q.id = job) LOOP PERFORM pg_sleep(0.05); END LOOP;
		END \$\$;
		SELECT pg_temp.wait_job(:id);
		SELECT 'job=' || :id;
	}, stdout => \$out, stderr => \$err, timeout => 120);
	my ($id) = $out =~ /job=(\d+)/;
	my @notes = grep { $_->{id} == ($id // -1) } map { decode_json($_) }
	  ($out =~ /Asynchronous notification "synchub_jobs" with payload "(.*?)" received/g);
	return ($id, \@notes);
}

my %iid;
for my $p (@providers)
{
	$iid{$p} = sql("SELECT synchub.create_integration('$p', '$p', 'http://127.0.0.1:$port{$p}',
		'{\"token\": \"test-token\", \"refresh_token\": \"test-refresh\"}', '{\"page_size\": $page_size{$p}}')");
	# HubSpot's full import lists archived contacts too (Salesforce's query
	# leaves deleted ones to queryAll, Pipedrive's lists omit them).
	mock($p, 'POST', '/_mock/archive', { token => 'test-token', count => 3 }) if $p eq 'hubspot';

	my ($id, $notes) = sync_listen($p, 'full');
	like(wait_job($id), qr/^succeeded\|1\|$N(\||$)/, "$p: full import of $N records succeeded in one attempt");
	is(differences($iid{$p}, $p), "0/0/$N/$N", "$p: the import equals the mock's $N contacts field by field");
	note("$p full import: " . sql("SELECT finished_at - started_at FROM synchub.jobs WHERE id = $id"));
	my @running = grep { $_->{state} eq 'running' && $_->{records_processed} } @$notes;
	cmp_ok(scalar @running, '>=', 1, "$p: progress notifications while running");
	is($running[-1]{records_processed}, sql("SELECT records_processed FROM synchub.jobs WHERE id = $id"),
		"$p: the last progress notification carries records_processed");
	is($notes->[-1]{state}, 'succeeded', "$p: the last notification is succeeded");
	is(sql("SELECT last_sync_status || '/' || (bookmark IS NOT NULL) FROM synchub.sync_state WHERE integration_id = $iid{$p}"),
		'succeeded/true', "$p: sync_state has the outcome and a bookmark");

	# Changes at the provider: the incremental run sees exactly them.
	my $fields = $p eq 'hubspot' ? { firstname => 'Zed' } : $p eq 'salesforce' ? { FirstName => 'Zed' } : { name => 'Zed Zed' };
	sleep 1;
	my $changed = mock($p, 'POST', '/_mock/update', { token => 'test-token', count => 5, fields => $fields })->{ids};
	mock($p, 'POST', '/_mock/archive', { token => 'test-token', ids => [ $changed->[0] ] })
	  unless $p eq 'pipedrive';
	mock($p, 'POST', '/_mock/reset');
	($id, $notes) = sync_listen($p, 'incremental');
	like(wait_job($id), qr/^succeeded\|1\|/, "$p: incremental sync succeeded");
	is(differences($iid{$p}, $p), "0/0/$N/$N", "$p: after the incremental sync the table equals the mock again");
	is(sql("SELECT count(*) FROM synchub.contacts WHERE integration_id = $iid{$p} AND first_name = 'Zed'"), 5,
		"$p: the 5 updated contacts are updated");
	is(sql("SELECT count(*) FROM synchub.contacts WHERE integration_id = $iid{$p} AND archived"),
		{ hubspot => 4, salesforce => 1, pipedrive => 0 }->{$p}, "$p: the archived contact is flagged");
	cmp_ok(sql("SELECT records_processed FROM synchub.jobs WHERE id = $id"), '<', 200,
		"$p: the incremental run read only recent changes");
}

# No credential in the log or any job row.
my $rows = sql("SELECT string_agg(concat_ws(' ', payload, checkpoint, result, last_error), ' ') FROM synchub.jobs");
unlike($rows, qr/test-token|test-refresh/, 'no credential in a job row');

# The health view.
is(sql("SELECT string_agg(concat_ws('/', name, status, last_sync_status, circuit, requests > 0, errors, p95_latency_ms > 0), ',' ORDER BY name)
		FROM synchub.integration_health"),
	'hubspot/active/succeeded/closed/t/0/t,pipedrive/active/succeeded/closed/t/0/t,salesforce/active/succeeded/closed/t/0/t',
	'integration_health: one row per integration with requests and p95 latency');

# kill -9 mid-import: a slow mock, resume from the checkpoint.
my $hs = $iid{hubspot};
sql("DELETE FROM synchub.contacts WHERE integration_id = $hs");
mock('hubspot', 'POST', '/_mock/reset');
mock('hubspot', 'POST', '/_mock/faults', { match => '/crm/v3/objects/contacts', method => 'GET', delay_ms => 150, count => -1 });
my $job = sql("SELECT synchub.sync('hubspot', 'full')");
$node->poll_query_until('postgres', "SELECT records_processed >= 1500 FROM synchub.jobs WHERE id = $job");
my $pid = worker_pid($node, 'postgres');
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'synchub worker' AND pid <> $pid"),
	'a new worker runs after kill -9');
like(wait_job($job, 120), qr/^succeeded\|2\|/, 'the killed import succeeds on its second attempt');
is(sql("SELECT count(*) || '/' || count(DISTINCT external_id) FROM synchub.contacts WHERE integration_id = $hs"),
	"$N/$N", 'every contact once after the resume');
is(differences($hs, 'hubspot'), "0/0/$N/$N", 'the resumed import equals the mock');
my $reqs = mock('hubspot', 'GET', '/_mock/requests?path=/crm/v3/objects/contacts');
my %pages;
$pages{ ($_->{query}{archived} // '') . ':' . ($_->{query}{after} // '') }++ for grep { $_->{method} eq 'GET' } @$reqs;
my $refetched = grep { $pages{$_} > 1 } keys %pages;
cmp_ok($refetched, '<=', 1, "no committed page fetched again ($refetched page in flight at the kill)");
mock('hubspot', 'DELETE', '/_mock/faults');

# A 429 storm: the job waits it out without using attempts.
mock('pipedrive', 'POST', '/_mock/reset');
mock('pipedrive', 'POST', '/_mock/faults',
	{ match => '/api/v2/persons', status => 429, headers => { 'Retry-After' => '1' }, count => 4, after => 2 });
$job = sql("SELECT synchub.sync('pipedrive', 'full')");
like(wait_job($job, 60), qr/^succeeded\|1\|$N$/, 'a full import through a 429 storm succeeds in one attempt');
is(scalar(grep { $_->{status} && $_->{status} == 429 } @{ mock('pipedrive', 'GET', '/_mock/requests') }), 4,
	'it met the 4 rate-limited answers');
cmp_ok(sql("SELECT rate_limited FROM synchub.integration_health WHERE name = 'pipedrive'"), '>=', 4,
	'integration_health counts them');

my $log = slurp_file($node->logfile);
unlike($log, qr/test-token|test-refresh/, 'no credential in the server log');

$node->stop;
$_->kill_kill for @servers;
done_testing();
