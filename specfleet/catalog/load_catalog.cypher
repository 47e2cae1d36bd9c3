// The seed's Cypher: the TFM notebook 07_Cypher_Database_Graph_Creation, which
// loads the CSVs of notebook 06 (written by `specfleet catalog graph` with the
// same names, ';' separator and headers). Put the CSVs in Neo4j's import folder
// and run the statements in order, e.g. `cypher-shell -f load_catalog.cypher`;
// `specfleet catalog graph` runs this file itself (embedded FalkorDB by default,
// or a Neo4j server with --neo4j-uri).
//
// Differences from the seed, all in the schema statements:
// * its constraints used Neo4j 4.0's `CREATE CONSTRAINT ON (t:Track) ASSERT
//   t.track_id IS UNIQUE`, which Neo4j 5 removed; they are written in the
//   4.4+ form `FOR ... REQUIRE` here;
// * IF NOT EXISTS on the constraints and the two name indexes, so running the
//   file twice does not fail.
// The node, relationship and URL statements are the seed's, verbatim.

// 1. constraints
CREATE CONSTRAINT IF NOT EXISTS FOR (t:Track) REQUIRE t.track_id IS UNIQUE;
CREATE CONSTRAINT IF NOT EXISTS FOR (a:Artist) REQUIRE a.artist_id IS UNIQUE;
CREATE CONSTRAINT IF NOT EXISTS FOR (g:Genre) REQUIRE g.genre_id IS UNIQUE;

// 2. nodes
LOAD CSV WITH HEADERS FROM "file:///master_artist.csv" AS line FIELDTERMINATOR ';'
MERGE (a:Artist {
                    artist_id: line.artist_id,
                    artist_name: line.artist_name,
                    popularity: toInteger(line.popularity),
                    is_main: (case line.is_main when 'True' then true else false end)
                     });

LOAD CSV WITH HEADERS FROM "file:///master_track.csv" AS line FIELDTERMINATOR ';'
MERGE (t:Track {
                    track_id: line.track_id,
                    track_name: line.track_name,
                    streams: toInteger(line.streams),
                    peak_date: date(line.peak_date)
                     });

LOAD CSV WITH HEADERS FROM "file:///master_genre.csv" AS line FIELDTERMINATOR ';'
MERGE (g:Genre {genre_id: line.genre});

// 3. indexes on the names
CREATE INDEX ArtistName IF NOT EXISTS FOR (a:Artist) ON (a.artist_name);
CREATE INDEX TrackName IF NOT EXISTS FOR (t:Track) ON (t.track_name);

// 4. relationships
LOAD CSV WITH HEADERS FROM "file:///rel_GEN_ART.csv" AS line FIELDTERMINATOR ';'
    MATCH (g:Genre {genre_id: line.genre})
    MATCH (a:Artist {artist_id: line.artist_id})
    MERGE (g)-[:GEN_ART]->(a);

LOAD CSV WITH HEADERS FROM "file:///rel_ART_TR.csv" AS line FIELDTERMINATOR ';'
    MATCH (a:Artist {artist_id: line.artist_id})
    MATCH (t:Track {track_id: line.track_id})
    MERGE (a)-[:ART_TR]->(t);

LOAD CSV WITH HEADERS FROM "file:///rel_REL_ART.csv" AS line FIELDTERMINATOR ';'
    MATCH (a1:Artist {artist_id: line.artist_id1})
    MATCH (a2:Artist {artist_id: line.artist_id2})
    MERGE (a1)-[:REL_ART]->(a2);

// 5. YouTube URL and views, set only where not yet set (the first URL stays)
LOAD CSV WITH HEADERS FROM "file:///tr_url.csv" AS row FIELDTERMINATOR ';'
    MERGE (t:Track {track_id:(row.track_id)})
     ON MATCH SET t.url = CASE WHEN t.url IS NULL then row.href ELSE t.url END,
                  t.yt_views = CASE WHEN t.yt_views IS NULL then toInteger(row.visual) ELSE t.yt_views END;
