module github.com/cachekit/cache

go 1.26.0

require (
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	github.com/maypok86/otter/v2 v2.4.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
)
