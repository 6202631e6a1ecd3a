# pg_dump and restore keep the jobs: unfinished and finished jobs come back
# with their state, and new jobs get ids after the restored ones.
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

$node->stop;
done_testing();
