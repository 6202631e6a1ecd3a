/*
 * bind — run one SQL statement with a file's contents as its parameter $1,
 * the way a driver (node-postgres, psycopg, PostgREST) sends an argument:
 * one Parse/Bind/Execute round trip, the value in text format, no SQL
 * literal for either side's lexer to scan.
 *
 *   bind CONNINFO SQL FILE      prints the result rows, tab-separated
 *
 * A trailing newline of FILE is not sent.  Exits 1 on a server error.
 */
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

static char *
read_file(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	long		n;
	char	   *buf;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
	{
		perror(path);
		exit(2);
	}
	buf = malloc(n + 1);
	if (buf == NULL || fread(buf, 1, n, f) != (size_t) n)
	{
		perror(path);
		exit(2);
	}
	fclose(f);
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return buf;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	const char *values[1];
	ExecStatusType status;

	if (argc != 4)
	{
		fprintf(stderr, "usage: bind CONNINFO SQL FILE\n");
		return 2;
	}
	values[0] = read_file(argv[3]);
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 1;
	}
	res = PQexecParams(conn, argv[2], 1, NULL, values, NULL, NULL, 0);
	status = PQresultStatus(res);
	if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "%s", PQerrorMessage(conn));
		return 1;
	}
	for (int i = 0; i < PQntuples(res); i++)
		for (int j = 0; j < PQnfields(res); j++)
			printf("%s%s", PQgetvalue(res, i, j), j + 1 < PQnfields(res) ? "\t" : "\n");
	PQclear(res);
	PQfinish(conn);
	return 0;
}
