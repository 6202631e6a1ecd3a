# pg_dump and restore keep what synchub holds: jobs with their state (new
# jobs get ids after the restored ones), integrations whose credentials
# still decrypt with the restored key, and rollups whose watermark carries
# on where it stopped.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'synchub'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION synchub;
	SET synchub.notify = off;
	SELECT count(*) FROM synchub.enqueue_many('[{"kind": "a", "queue": "d"}, {"kind": "b", "queue": "d"},
	                                            {"kind": "c", "queue": "d", "dedup_key": "k"}]');
	SELECT count(*) FROM synchub.claim('d', 1);
	SELECT synchub.complete(id) FROM synchub.jobs WHERE kind = 'a';
	SELECT synchub.create_integration('crm', 'hubspot', 'http://127.0.0.1:1', '{"token": "tok-123"}') > 0;
	INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
	     SELECT 1, i, 'sent', '2026-01-01 10:00+00' FROM generate_series(1, 10) i;
	SELECT synchub.refresh_rollups();
});
my $before = $node->safe_psql('src',
	'SELECT string_agg(id || kind || state || coalesce(dedup_key, \'\'), \',\' ORDER BY id) FROM synchub.jobs');

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('dst'), $dump ], 'pg_restore');

my $after = $node->safe_psql('dst',
	'SELECT string_agg(id || kind || state || coalesce(dedup_key, \'\'), \',\' ORDER BY id) FROM synchub.jobs');
is($after, $before, 'jobs, states and dedup keys survive dump and restore');
is($node->safe_psql('dst', q{
	SELECT synchub.enqueue('new', queue => 'd') > (SELECT max(id) FROM synchub.job_history)}),
	't', 'new jobs get ids after the restored ones');
is($node->safe_psql('dst', q{SELECT synchub.enqueue('c', queue => 'd', dedup_key => 'k') =
	(SELECT id FROM synchub.jobs WHERE kind = 'c')}), 't', 'restored dedup keys still hold');

is($node->safe_psql('dst', q{
	SELECT synchub._credentials_get(id)->>'token' FROM synchub.integrations WHERE name = 'crm'}),
	'tok-123', 'credentials decrypt after restore');
$node->safe_psql('dst', q{
	INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
	     SELECT 1, i, 'sent', '2026-01-01 10:30+00' FROM generate_series(11, 15) i});
is($node->safe_psql('dst', 'SELECT synchub.refresh_rollups()'), '5',
	'the restored watermark folds only the new events');
is($node->safe_psql('dst', q{
	SELECT synchub.campaign_dashboard(1, '2026-01-01', '2026-01-02')->'counts'->>'sent'}),
	'15', 'rollups count each event once after restore');

$node->stop;
done_testing();
